"""Risk: pre-trade limits, circuit breakers and the kill switch (see docs/risk.md)."""

from cryptoarb.core.risk.breakers import BREAKERS, Breaker, BreakerState
from cryptoarb.core.risk.config import RiskConfig
from cryptoarb.core.risk.cycles import CycleIntent
from cryptoarb.core.risk.events import AuditEvent
from cryptoarb.core.risk.manager import RiskManager

__all__ = ["BREAKERS", "AuditEvent", "Breaker", "BreakerState", "CycleIntent", "RiskConfig", "RiskManager"]
