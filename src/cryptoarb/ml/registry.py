"""The model registry: archived files named by the SHA256 of their bytes, a ``model_metadata``
row per model, one live model at a time, swaps verified before anything changes.

No PyTorch here: listing models and reporting the live one (the API, ``arb model list``) stays
cheap. Loading goes through :mod:`cryptoarb.ml.model`, imported when a swap needs it.

Statuses: ``candidate`` (registered), ``live`` (at most one), ``retired`` (was live),
``rejected`` (lost its shadow test). A swap checks the archive's hash and that it loads BEFORE
touching the database; then, in one transaction, the old live model becomes ``retired``, the new
one ``live``, and an ``audit_log`` row records who, what and why. Swap listeners (alerts) are
called after the commit; a failing listener never undoes a swap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cryptoarb.storage.models import AuditLog, ModelMetadata

log = logging.getLogger(__name__)

NAME = "spread_lstm"


class RegistryError(ValueError):
    """An unknown version, a missing or corrupted archive: the live model is left as it was."""


@dataclass(frozen=True)
class ModelInfo:
    sha256: str
    name: str
    status: str
    path: str
    trained_at: datetime | None
    created_at: datetime | None
    promoted_at: datetime | None
    data_from_ns: int | None
    data_to_ns: int | None
    feature_schema: dict[str, Any] | None
    metrics: dict[str, Any]
    parent: str | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the API's answer, ``arb model show --json``)."""
        d = dict(self.__dict__)
        for k in ("trained_at", "created_at", "promoted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


@dataclass(frozen=True)
class SwapEvent:
    """What an alert about a model swap needs."""

    old: str | None
    new: str
    reason: str
    actor: str
    at: datetime


#: called after every committed swap (an alerts package registers its sender here)
swap_listeners: list[Callable[[SwapEvent], None]] = []


def add_swap_listener(fn: Callable[[SwapEvent], None]) -> None:
    swap_listeners.append(fn)


def _info(r: ModelMetadata) -> ModelInfo:
    return ModelInfo(r.sha256, r.name, r.status, r.path, r.trained_at, r.created_at, r.promoted_at,
                     r.data_from_ns, r.data_to_ns, r.feature_schema, dict(r.metrics or {}), r.parent, r.reason)


def archive_path(models_dir: str | Path, sha256: str) -> Path:
    return Path(models_dir) / "archive" / f"{sha256}.pt"


def save_archive(models_dir: str | Path, blob: bytes) -> tuple[str, Path]:
    """Write ``blob`` as ``archive/<sha256>.pt`` (atomically: a temporary file renamed)."""
    sha = hashlib.sha256(blob).hexdigest()
    path = archive_path(models_dir, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and sha256_of(path) == sha:
        return sha, path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha, path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def register(session: Session, models_dir: str | Path, blob: bytes, metrics: dict[str, Any],
             schema: dict[str, Any], data_range: tuple[int, int], reason: str,
             trained_at: datetime | None = None) -> ModelInfo:
    """Archive a trained model and record it as a candidate; its parent is the live model.
    Registering the same bytes again returns the existing row."""
    sha, path = save_archive(models_dir, blob)
    row = session.scalars(select(ModelMetadata).where(ModelMetadata.name == NAME,
                                                      ModelMetadata.version == sha)).first()
    if row is None:
        live = live_model(session)
        row = ModelMetadata(
            name=NAME, version=sha, sha256=sha, path=str(path), metrics=metrics, status="candidate",
            trained_at=trained_at or datetime.now(UTC), data_from_ns=data_range[0], data_to_ns=data_range[1],
            feature_schema=schema, parent=live.sha256 if live else None, reason=reason,
        )
        session.add(row)
        session.commit()
    return _info(row)


def list_models(session: Session) -> list[ModelInfo]:
    """Every registered model, newest first."""
    rows = session.scalars(select(ModelMetadata).where(ModelMetadata.name == NAME)
                           .order_by(ModelMetadata.id.desc())).all()
    return [_info(r) for r in rows]


def live_model(session: Session) -> ModelInfo | None:
    row = session.scalars(select(ModelMetadata).where(ModelMetadata.name == NAME, ModelMetadata.status == "live")
                          .order_by(ModelMetadata.promoted_at.desc())).first()
    return _info(row) if row is not None else None


def _row(session: Session, version: str) -> ModelMetadata:
    v = version.strip().lower()
    if len(v) < 8 or any(c not in "0123456789abcdef" for c in v):
        raise RegistryError(f"model version {version!r}: give the sha256 (or at least its first 8 hex digits)")
    rows = session.scalars(select(ModelMetadata).where(ModelMetadata.name == NAME,
                                                       ModelMetadata.sha256.startswith(v))).all()
    if not rows:
        raise RegistryError(f"unknown model version {version!r} (`arb model list` shows the registered ones)")
    if len(rows) > 1:
        raise RegistryError(f"model version {version!r} is ambiguous: {len(rows)} models start with it")
    return rows[0]


def get_model(session: Session, version: str) -> ModelInfo:
    return _info(_row(session, version))


def verified_bytes(models_dir: str | Path, info: ModelInfo) -> bytes:
    """The archive's bytes, after checking that they hash to the model's version."""
    path = archive_path(models_dir, info.sha256)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise RegistryError(f"model {info.sha256[:12]}: archive {path} cannot be read: {e.strerror or e}") from None
    got = hashlib.sha256(blob).hexdigest()
    if got != info.sha256:
        raise RegistryError(f"model {info.sha256[:12]}: archive {path} is corrupt (its sha256 is {got[:12]}..., "
                            f"expected {info.sha256[:12]}...)")
    return blob


def load_verified(models_dir: str | Path, info: ModelInfo) -> Any:
    """The model ready to score (a :class:`cryptoarb.ml.model.LoadedModel`); imports PyTorch."""
    from cryptoarb.ml.model import ModelError, from_bytes

    blob = verified_bytes(models_dir, info)
    try:
        return from_bytes(blob, f"model {info.sha256[:12]}")
    except ModelError as e:
        raise RegistryError(str(e)) from None


def swap(session: Session, models_dir: str | Path, version: str, reason: str, actor: str = "operator") -> SwapEvent:
    """Make ``version`` the live model (roll back or forward). Nothing changes unless its archive
    verifies and loads."""
    row = _row(session, version)
    info = _info(row)
    load_verified(models_dir, info)
    old = live_model(session)
    now = datetime.now(UTC)
    if old is not None and old.sha256 == row.sha256:
        return SwapEvent(old.sha256, row.sha256, reason, actor, now)  # already live: nothing to do
    for r in session.scalars(select(ModelMetadata).where(ModelMetadata.name == NAME,
                                                         ModelMetadata.status == "live")).all():
        r.status = "retired"
    row.status = "live"
    row.promoted_at = now
    event = SwapEvent(old.sha256 if old else None, row.sha256, reason, actor, now)
    session.add(AuditLog(ts=now, actor=actor, action="model.swap",
                         detail={"old": event.old, "new": event.new, "reason": reason}))
    session.commit()
    for fn in list(swap_listeners):
        try:
            fn(event)
        except Exception:  # an alert that fails must not undo or hide the swap
            log.exception("model swap listener failed")
    return event


def set_status(session: Session, version: str, status: str, note: str) -> None:
    """Mark a candidate (``rejected`` after a lost shadow test); never touches the live model."""
    row = _row(session, version)
    if row.status == "live":
        return
    row.status = status
    row.reason = f"{row.reason or ''}; {note}".strip("; ")
    session.commit()


def model_version(db: Engine) -> dict[str, Any]:
    """``GET /api/model/version``'s answer (the shape of the api branch's ``ApiContext.model_source``):
    the live model, or ``"no model"``."""
    with Session(db) as s:
        m = live_model(s)
    if m is None:
        return {"status": "no model", "name": None, "version": None, "sha256": None, "promoted_at": None,
                "detail": "no model is live; the engine runs on its rules alone"}
    return {"status": "ok", "name": m.name, "version": m.sha256, "sha256": m.sha256, "promoted_at": m.promoted_at,
            "detail": m.reason or ""}
