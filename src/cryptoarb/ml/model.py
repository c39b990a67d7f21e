"""SpreadLSTM: from a window of spread-series steps, the spread ``horizon`` steps ahead and the
probability that it is then above the edge (an opportunity survives). Imports PyTorch: only the
ML commands, the scorer and the shadow test load this module.

A model file is ``torch.save`` of a plain dict (format, config, normalisation, state dict) written
to memory, so its bytes depend only on the weights and the config, never on a file name or a
clock: the same data and seed give the same bytes, hence the same SHA256.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from cryptoarb.ml.dataset import STEP_FEATURES

FORMAT = 1


class ModelError(ValueError):
    """A model file or device request that cannot be used: the message says why."""


class SpreadLSTM(nn.Module):
    """LSTM over the window; two heads on the last hidden state: the spread change to the
    target step (normalised) and the survival logit."""

    def __init__(self, n_features: int, hidden: int = 32, layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        y: torch.Tensor = self.head(out[:, -1, :])
        return y


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("--device cuda: no CUDA GPU is available to PyTorch on this machine "
                             f"(torch {torch.__version__}); use --device cpu or auto")
        return torch.device("cuda")
    if device == "cpu":
        return torch.device("cpu")
    raise ModelError(f"--device {device!r}: use auto, cpu or cuda")


@dataclass
class LoadedModel:
    """A model ready to score: weights, its config and the input normalisation."""

    net: SpreadLSTM
    config: dict[str, Any]
    mean: npt.NDArray[np.float32]
    std: npt.NDArray[np.float32]
    target_std: float

    @property
    def window(self) -> int:
        return int(self.config["window"])

    @property
    def horizon(self) -> int:
        return int(self.config["horizon"])

    @property
    def edge_bps(self) -> float:
        return float(self.config["edge_bps"])

    def predict(self, x: npt.NDArray[np.float32], spread_now: npt.NDArray[np.float64],
                batch: int = 4096) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Predicted future spread (bps) and survival probability for each window of ``x``."""
        preds: list[npt.NDArray[np.float64]] = []
        probs: list[npt.NDArray[np.float64]] = []
        self.net.eval()
        with torch.inference_mode():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy((x[i:i + batch] - self.mean) / self.std)
                out = self.net(xb).double().numpy()
                preds.append(out[:, 0] * self.target_std)
                probs.append(1 / (1 + np.exp(-out[:, 1])))
        if not preds:
            return np.zeros(0), np.zeros(0)
        return spread_now + np.concatenate(preds), np.concatenate(probs)


def to_bytes(net: SpreadLSTM, config: dict[str, Any], mean: npt.NDArray[np.float32],
             std: npt.NDArray[np.float32], target_std: float) -> bytes:
    payload = {
        "format": FORMAT,
        "config": config,
        "mean": torch.from_numpy(np.ascontiguousarray(mean, np.float32)).clone(),
        "std": torch.from_numpy(np.ascontiguousarray(std, np.float32)).clone(),
        "target_std": float(target_std),
        "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def from_bytes(blob: bytes, name: str = "model") -> LoadedModel:
    """Load a model file's bytes (``weights_only``: a model file cannot run code)."""
    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ModelError(f"{name}: not a cryptoarb SpreadLSTM file (format {FORMAT})")
        cfg = dict(payload["config"])
        if tuple(cfg.get("features", ())) != STEP_FEATURES:
            raise ModelError(f"{name}: feature schema {cfg.get('features')} is not this version's {STEP_FEATURES}")
        net = SpreadLSTM(len(STEP_FEATURES), int(cfg["hidden"]), int(cfg["layers"]))
        net.load_state_dict(payload["state_dict"])
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"{name}: cannot load the model: {type(e).__name__}: {e}") from None
    net.eval()
    return LoadedModel(net, cfg, payload["mean"].numpy(), payload["std"].numpy(), float(payload["target_std"]))
