"""The open-loop send schedule of the load harness (issue #15), fixed before the run starts.

- ``smooth``: frame k of a venue is due at ``t0 + k / rate``;
- ``burst``: ``rate / 10`` frames are due together at every 100 ms boundary (as Binance sends
  ``@depth@100ms``: a venue's whole update for an interval arrives at once).

Markets take turns (frame k belongs to market ``k mod markets``). Every venue of a run gets the
same ``t0``, so their bursts coincide. The time a frame is due is what it is stamped with, and
what tick-to-decision is measured from: a sender (or engine) that falls behind is measured late,
never excused (no coordinated omission).
"""

from __future__ import annotations

from dataclasses import dataclass

BOUNDARY_NS = 100_000_000
MODES = ("smooth", "burst")


@dataclass(frozen=True)
class Schedule:
    rate: float  # frames/s offered by this venue
    mode: str
    seconds: float  # length of the schedule

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.rate <= 0 or self.seconds <= 0:
            raise ValueError(f"bad schedule {self}")

    @property
    def total(self) -> int:
        return int(self.rate * self.seconds)

    def at(self, k: int, t0: int) -> int:
        """When slot ``k`` is due (ns since the epoch)."""
        if self.mode == "smooth":
            return t0 + int(k * 1e9 / self.rate)
        per = max(1, round(self.rate * BOUNDARY_NS / 1e9))
        return t0 + (k // per) * BOUNDARY_NS
