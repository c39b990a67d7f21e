"""Latency samples in integer nanoseconds, summarised as percentiles."""

from __future__ import annotations

from array import array


class LatencyRecorder:
    """Appends raw samples (cheap on the hot path); percentiles are computed on demand."""

    __slots__ = ("append", "samples")

    def __init__(self) -> None:
        self.samples = array("q")
        self.append = self.samples.append

    def __len__(self) -> int:
        return len(self.samples)

    def percentiles_us(self, *qs: float) -> dict[str, float]:
        data = sorted(self.samples)
        out: dict[str, float] = {}
        for q in qs:
            name = "p" + f"{q:g}".replace(".", "")
            out[name] = round(percentile(data, q) / 1e3, 3) if data else 0.0
        return out

    def summary_us(self) -> dict[str, float]:
        return self.percentiles_us(50, 99, 99.9)


def percentile(sorted_data: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    n = len(sorted_data)
    k = max(0, min(n - 1, round(q / 100 * n + 0.5) - 1))
    return float(sorted_data[k])
