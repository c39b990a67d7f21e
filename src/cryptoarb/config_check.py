"""Settings mistakes as one line that says how to fix them: an unknown key with the nearest valid
one, the ``ARB_*`` variable a bad value came from, a list/table variable that is not JSON.

pydantic reports ``extra_forbidden`` with the key only, and pydantic-settings ignores an ``ARB_*``
variable naming no section and names only the section when a variable is not JSON; these helpers
fill in the rest for :func:`cryptoarb.config.load_settings`.
"""

from __future__ import annotations

import difflib
import os
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


class ConfigError(ValueError):
    """A settings mistake, shown as one line (exit code 2)."""


#: ARB_* variables read elsewhere (the DEX key is never a setting; the log options: obs/logs.py)
NOT_SETTINGS = frozenset({"ARB_DEX_PRIVATE_KEY", "ARB_DEX_PRIVATE_KEY_FILE",
                          "ARB_LOG_LEVEL", "ARB_LOG_FILE", "ARB_LOG_FORMAT"})


def _fields_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The valid keys of the settings section at ``loc`` ([] when it is free-form)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        while get_origin(ann) in (list, Union, UnionType):
            ann = next((a for a in get_args(ann) if a is not type(None)), None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _nearest(key: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(key.lower(), valid, n=1, cutoff=0.6)
    if near:
        return f" (did you mean {near[0]!r}?)"
    return f" (valid: {', '.join(valid)})" if valid else ""


def describe(root: type[BaseModel], err: Any) -> str:
    """One validation error: ``where: what``; an unknown key with the nearest valid one; the
    environment variable when the value came from one."""
    loc = tuple(err["loc"])
    dotted = ".".join(str(x) for x in loc)
    if err["type"] == "extra_forbidden":
        msg = f"{dotted}: unknown key{_nearest(str(loc[-1]), _fields_at(root, loc[:-1]))}"
    else:
        msg = f"{dotted}: {err['msg'].removeprefix('Value error, ')}"
    env = "ARB_" + "__".join(str(x) for x in loc).upper()
    if env in {k.upper() for k in os.environ}:
        msg = f"{env} (environment) -> {msg}"
    return msg


def check_env_names(root: type[BaseModel]) -> None:
    """An ``ARB_*`` variable naming no settings section is a typo: pydantic-settings would ignore it."""
    sections = list(root.model_fields)
    for name in sorted(os.environ):
        upper = name.upper()
        if not upper.startswith("ARB_") or upper in NOT_SETTINGS:
            continue
        top = upper[4:].split("__", 1)[0].lower()
        if top not in sections:
            near = difflib.get_close_matches(top, sections, n=1, cutoff=0.6)
            hint = f" (did you mean ARB_{near[0].upper()}__...?)" if near else f" (sections: {', '.join(sections)})"
            raise ConfigError(f"{name} (environment): unknown settings section {top!r}{hint}")


def env_parse_error(e: Exception) -> str:
    """Which ARB_* variable is not the JSON its list/dict setting needs (pydantic-settings only
    names the section)."""
    import json

    bad = []
    for name, value in os.environ.items():
        if not name.upper().startswith("ARB_") or name.upper() in NOT_SETTINGS:
            continue
        try:
            json.loads(value)
        except ValueError as je:
            if value.lstrip()[:1] in ("[", "{"):
                bad.append(f"{name}: not valid JSON ({je})")
    if bad:
        return "; ".join(bad)
    return f"environment: {' '.join(str(e).split())} (lists and tables are given as JSON)"
