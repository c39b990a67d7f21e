"""Circuit breakers: closed -> (trip) open -> (cool-down) half-open -> (probe) closed or open.

A breaker only holds state and time; the manager measures its input and decides when it trips.
*Level* breakers (daily loss, drawdown, stale feeds, one-legged exposure) watch a quantity that
does not go away by waiting: when their cool-down ends the manager re-checks the level and
re-trips instead of letting a probe through while it is still breached. *Event* breakers (loss
streak, win rate, error rate, latency) watch a run of outcomes: their counters restart when they
trip, and the probe's outcome decides.
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # trading allowed
    OPEN = "open"  # tripped: every new intent refused until the cool-down ends
    HALF_OPEN = "half_open"  # one probe trade allowed; its outcome closes or re-opens


DAILY_LOSS = "daily_loss"
DRAWDOWN = "drawdown"
LOSS_STREAK = "loss_streak"
WIN_RATE = "win_rate"
ERROR_RATE = "error_rate"
STALE_FEEDS = "stale_feeds"
ONE_LEGGED = "one_legged"
LATENCY = "latency"

BREAKERS = (DAILY_LOSS, DRAWDOWN, LOSS_STREAK, WIN_RATE, ERROR_RATE, STALE_FEEDS, ONE_LEGGED, LATENCY)
LEVEL_BREAKERS = frozenset({DAILY_LOSS, DRAWDOWN, STALE_FEEDS, ONE_LEGGED})


class Breaker:
    """One breaker's state machine on the event-time clock."""

    __slots__ = ("enabled", "name", "reopen_ns", "state", "trips")

    def __init__(self, name: str, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.state = BreakerState.CLOSED
        self.reopen_ns = 0  # when OPEN: the moment it may go half-open
        self.trips = 0

    def trip(self, now_ns: int, cooldown_ns: int) -> None:
        self.state = BreakerState.OPEN
        self.reopen_ns = now_ns + cooldown_ns
        self.trips += 1

    def half_open(self) -> None:
        self.state = BreakerState.HALF_OPEN

    def reset(self) -> None:
        self.state = BreakerState.CLOSED
        self.reopen_ns = 0

    @property
    def level(self) -> bool:
        return self.name in LEVEL_BREAKERS
