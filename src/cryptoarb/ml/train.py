"""Train a SpreadLSTM on a spread series, validate it on a later time range, and report.

Reproducible: the seed fixes the initial weights and the batch order, PyTorch runs its
deterministic algorithms on one thread while training, and the model file is written from
memory (see :mod:`cryptoarb.ml.model`), so the same data and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cryptoarb.ml import metrics as M
from cryptoarb.ml.dataset import STEP_FEATURES, DatasetError, Series, split_by_time, windows
from cryptoarb.ml.model import LoadedModel, SpreadLSTM, resolve_device, to_bytes


@dataclass
class TrainConfig:
    epochs: int = 10
    window: int = 32
    horizon: int = 5
    hidden: int = 32
    layers: int = 1
    batch: int = 256
    lr: float = 3e-3
    seed: int = 7
    val_fraction: float = 0.2
    edge_bps: float | None = None  # None: the 90th percentile of the training spreads
    device: str = "cpu"
    min_train: int = 64
    min_val: int = 16


@dataclass
class TrainResult:
    blob: bytes
    sha256: str
    metrics: dict[str, Any]
    schema: dict[str, Any]
    data_range: tuple[int, int]
    epoch_seconds: list[float] = field(default_factory=list)


EpochCallback = Callable[[int, float, float], None]  # epoch (1-based), train loss, validation loss


def train(series: Series, cfg: TrainConfig, on_epoch: EpochCallback | None = None) -> TrainResult:
    if cfg.epochs < 1:
        raise DatasetError("--epochs must be at least 1")
    if cfg.window < 2 or cfg.horizon < 1:
        raise DatasetError("the window needs at least 2 steps and the horizon at least 1")
    device = resolve_device(cfg.device)
    w = windows(series, cfg.window, cfg.horizon)
    tr, va = split_by_time(w, cfg.val_fraction, cfg.min_train, cfg.min_val)
    edge = float(np.quantile(tr.spread_now, 0.9)) if cfg.edge_bps is None else float(cfg.edge_bps)
    mean = tr.x.reshape(-1, tr.x.shape[2]).mean(axis=0).astype(np.float32)
    std = tr.x.reshape(-1, tr.x.shape[2]).std(axis=0).astype(np.float32)
    std[std < 1e-6] = 1.0
    delta = tr.spread_future - tr.spread_now
    target_std = float(delta.std()) or 1.0

    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(cfg.seed)
        net = SpreadLSTM(len(STEP_FEATURES), cfg.hidden, cfg.layers).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        gen = torch.Generator().manual_seed(cfg.seed)

        def tensors(x: np.ndarray, now: np.ndarray, fut: np.ndarray) -> tuple[torch.Tensor, ...]:
            xt = torch.from_numpy((x - mean) / std).to(device)
            yt = torch.from_numpy(((fut - now) / target_std).astype(np.float32)).to(device)
            ct = torch.from_numpy((fut > edge).astype(np.float32)).to(device)
            return xt, yt, ct

        xt, yt, ct = tensors(tr.x, tr.spread_now, tr.spread_future)
        xv, yv, cv = tensors(va.x, va.spread_now, va.spread_future)
        mse, bce = nn.MSELoss(), nn.BCEWithLogitsLoss()

        def loss_of(out: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            total: torch.Tensor = mse(out[:, 0], y) + bce(out[:, 1], c)
            return total

        seconds: list[float] = []
        val_loss = math.nan
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            net.train()
            perm = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for i in range(0, len(perm), cfg.batch):
                b = perm[i:i + cfg.batch].to(device)
                opt.zero_grad()
                loss = loss_of(net(xt[b]), yt[b], ct[b])
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach()) * len(b)
            net.eval()
            with torch.inference_mode():
                val_loss = float(loss_of(net(xv), yv, cv))
            seconds.append(time.perf_counter() - t0)
            if on_epoch is not None:
                on_epoch(epoch, total / len(perm), val_loss)
        net = net.cpu()
        config = {"window": cfg.window, "horizon": cfg.horizon, "hidden": cfg.hidden, "layers": cfg.layers,
                  "edge_bps": edge, "features": list(STEP_FEATURES), "seed": cfg.seed, "epochs": cfg.epochs}
        blob = to_bytes(net, config, mean, std, target_std)
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)

    model = LoadedModel(net, config, mean, std, target_std)
    report = evaluate(model, tr, va, val_loss)
    report["epoch_seconds"] = seconds
    report["device"] = str(device)
    schema = {"features": list(STEP_FEATURES), "window": cfg.window, "horizon": cfg.horizon,
              "columns": ["ts_ns", "group", "spread_bps", "mid", "imbalance", "depth_quote", "book_spread_bps"]}
    return TrainResult(blob, hashlib.sha256(blob).hexdigest(), M.finite(report), schema, series.range_ns, seconds)


def evaluate(model: LoadedModel, tr: Any, va: Any, val_loss: float) -> dict[str, Any]:
    """Validation metrics against the persistence and linear baselines (see docs/ml.md)."""
    edge = model.edge_bps
    pred, prob = model.predict(va.x, va.spread_now)
    linear = _linear_baseline(tr, va)
    opp = va.spread_now > edge  # the steps where the rule would trade: survival is judged there
    survived = va.spread_future > edge
    return {
        "val_loss": val_loss,
        "train_windows": len(tr),
        "val_windows": len(va),
        "val_range_ns": [int(va.ts_ns[0]), int(va.ts_ns[-1])],
        "edge_bps": edge,
        "rmse": {"model": M.rmse(pred, va.spread_future), "persistence": M.rmse(va.spread_now, va.spread_future),
                 "linear": M.rmse(linear, va.spread_future)},
        "survival": {"opportunities": int(opp.sum()), "survived": int((opp & survived).sum()),
                     "auc": M.auc(prob[opp], survived[opp]),
                     "calibration": M.calibration(prob[opp], survived[opp])},
        "rule": {"without_model": M.trading_rule(va.spread_now, va.spread_future, edge),
                 "with_model": M.trading_rule(va.spread_now, va.spread_future, edge, pred)},
    }


def _linear_baseline(tr: Any, va: Any) -> np.ndarray:
    """Least squares (small ridge) of the spread change on the flattened window."""
    def design(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        return np.hstack([flat, np.ones((len(x), 1))])

    a = design(tr.x)
    mu, sd = a[:, :-1].mean(axis=0), a[:, :-1].std(axis=0)
    sd[sd < 1e-9] = 1.0
    a[:, :-1] = (a[:, :-1] - mu) / sd
    y = tr.spread_future - tr.spread_now
    coef = np.linalg.solve(a.T @ a + 1e-3 * np.eye(a.shape[1]), a.T @ y)
    b = design(va.x)
    b[:, :-1] = (b[:, :-1] - mu) / sd
    return np.asarray(va.spread_now + b @ coef)
