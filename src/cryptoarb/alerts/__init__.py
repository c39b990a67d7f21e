"""Alerts to people: breaker trips, the kill switch, leg failures, reconciliation surprises,
balance drift -- to Telegram, Slack, e-mail or a JSON webhook through apprise.

``AlertSink.notify(kind, key, title, body, detail)`` is the whole API for producers; it never
blocks (de-dupe and rate limit in the caller, delivery on one worker thread per channel).
``attach(engine, sink)`` wires an engine's risk events and trades. See docs/alerts.md.
"""

from cryptoarb.alerts.sink import AlertSink
from cryptoarb.alerts.throttle import Alert, Throttle
from cryptoarb.alerts.wiring import (
    Notifier,
    attach,
    audit_alert,
    balance_drift_alert,
    leg_failure,
    reconciliation_alert,
    trade_alert,
)

__all__ = ["Alert", "AlertSink", "Notifier", "Throttle", "attach", "audit_alert", "balance_drift_alert", "leg_failure",
           "reconciliation_alert", "trade_alert"]
