"""Alerts: de-dupe and rate limit (scripted clock), real delivery through apprise to a local JSON
webhook and a local SMTP server, URL validation and redaction without any network, the engine's
events as alerts, and dead / hanging channels that cost trading nothing (same trades as a run
without alerts)."""

from __future__ import annotations

import logging
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alertkit import BlackHole, Smtp, Webhook, closed_port
from cryptoarb.alerts import (
    Alert,
    AlertSink,
    Throttle,
    audit_alert,
    balance_drift_alert,
    reconciliation_alert,
    trade_alert,
)
from cryptoarb.config import ConfigError, load_settings
from cryptoarb.config_alerts import private_url
from cryptoarb.core.orders import ArbStatus, ArbTrade, Order, OrderStatus
from cryptoarb.core.risk import AuditEvent
from cryptoarb.demo.run import build_demo
from cryptoarb.engine.control import operator_control
from cryptoarb.redact import RedactingFilter

TG_TOKEN = "123456789:AAHsecretTelegramBotToken0001"
SLACK = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Recorder:
    """A channel ``send`` recording what would be delivered (title, body, level)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def __call__(self, title: str, body: str, level: str) -> bool:
        self.sent.append((title, body, level))
        return True


def alert(key: str = "k", kind: str = "breaker") -> Alert:
    return Alert(kind, key, f"title {key}", "body")


# -- the throttle: scripted time, no sleeping ---------------------------------------------------

def test_same_key_within_the_window_is_one_alert_and_a_count() -> None:
    clock = Clock()
    th = Throttle(window_s=60, rate_per_min=0, burst=1, clock=clock)
    assert th.admit(alert("a")) is not None
    for _ in range(4):
        clock.t += 10
        assert th.admit(alert("a")) is None  # folded
    assert th.admit(alert("b")) is not None  # another key is not
    assert th.suppressed == 4 and th.due() == []  # the window is still open
    clock.t += 20.0  # 60 s after the first alert of "a": its window ends
    [summary] = th.due()
    assert summary.key == "a" and summary.repeats == 4 and summary.first_ts == 1000.0
    assert th.admit(alert("a")) is not None and th.due() == []  # a fresh window, nothing owed


def test_the_next_alert_of_a_key_carries_the_count_of_the_last_window() -> None:
    clock = Clock()
    th = Throttle(window_s=5, rate_per_min=0, burst=1, clock=clock)
    th.admit(alert("a"))
    th.admit(alert("a"))
    th.admit(alert("a"))
    clock.t += 5
    nxt = th.admit(alert("a"))
    assert nxt is not None and nxt.repeats == 2
    assert th.pending() == []


def test_rate_limit_is_a_token_bucket_and_says_how_many_it_dropped() -> None:
    clock = Clock()
    th = Throttle(window_s=0, rate_per_min=6, burst=2, clock=clock)  # one token per 10 s
    assert [th.admit(alert(f"k{i}")) is not None for i in range(5)] == [True, True, False, False, False]
    assert th.rate_limited == 3
    clock.t += 9.99
    assert th.admit(alert("x")) is None
    clock.t += 0.01
    passed = th.admit(alert("y"))
    assert passed is not None and passed.dropped == 4  # the four dropped before it
    assert th.admit(alert("z"), urgent=True) is not None  # kill / resume are never rate-limited


def test_pending_hands_every_open_count_at_the_end() -> None:
    th = Throttle(window_s=3600, rate_per_min=0, burst=1, clock=Clock())
    for key in ("a", "a", "a", "b", "b", "c"):
        th.admit(alert(key))
    assert sorted((a.key, a.repeats) for a in th.pending()) == [("a", 2), ("b", 1)]


# -- delivery through apprise to local servers --------------------------------------------------

def test_webhook_receives_alerts_once_per_key_then_the_count() -> None:
    with Webhook() as hook:
        sink = AlertSink([(hook.url(), None)], dedupe_window_s=3600, source="run r1").start()
        assert sink.notify("breaker", "breaker:loss_streak:trip", "loss_streak tripped", "3 losses",
                           {"streak": 3, "pnl": Decimal("-1.5")}, "failure")
        for _ in range(4):
            assert not sink.notify("breaker", "breaker:loss_streak:trip", "loss_streak tripped", "3 losses")
        assert sink.notify("kill", "kill:1", "KILL", "drill", level="failure")
        stats = sink.close()
    assert hook.titles() == ["cryptoarb: loss_streak tripped", "cryptoarb: KILL", "cryptoarb: loss_streak tripped"]
    first, kill, count = (r["json"] for r in hook.received)
    assert first["type"] == "failure" and kill["type"] == "failure"
    assert '"streak": 3' in first["message"] and '"pnl": "-1.5"' in first["message"]
    assert "run r1" in first["message"] and "key: breaker:loss_streak:trip" in first["message"]
    assert "+4 more alert(s) of this kind" in count["message"] and "+4" not in first["message"]
    assert stats["sent"] == 3 and stats["suppressed"] == 4 and stats["failed"] == stats["dropped"] == 0


def test_webhook_sees_the_rate_limit() -> None:
    with Webhook() as hook:
        sink = AlertSink([(hook.url(), None)], rate_per_min=1, burst=2).start()
        sent = [sink.notify("leg_failure", f"leg:{i}", f"failure {i}") for i in range(6)]
        assert sent == [True, True, False, False, False, False]
        assert sink.notify("kill", "kill:7", "KILL", urgent=True)  # kill and resume always go out
        stats = sink.close()
    assert hook.titles() == ["cryptoarb: failure 0", "cryptoarb: failure 1", "cryptoarb: KILL"]
    assert "4 other alert(s) dropped by the rate limit" in hook.received[2]["json"]["message"]
    assert stats["rate_limited"] == 4 and stats["sent"] == 3


def test_email_reaches_a_local_smtp_server() -> None:
    ev = AuditEvent("alice", "kill", "exchange maintenance", 1_700_000_000_000_000_000,
                    {"cancel_orders": ["r1-7b", "r1-7s"], "open_notional": 12.5})
    with Smtp() as smtp:
        sink = AlertSink([(smtp.url(), None)]).start()
        assert audit_alert(sink, ev, "r1")
        stats = sink.close(timeout_s=20)
    assert stats["sent"] == 1, stats
    [mail] = smtp.messages
    assert mail["Subject"] == "cryptoarb: KILL SWITCH set by alice: trading stopped"
    assert mail["To"] == "ops@example.com" and mail["From"] == "cryptoarb@example.com"
    body = smtp.bodies()[0]
    assert "exchange maintenance" in body and "2 open order(s) to cancel" in body and "r1-7b" in body


def test_a_dead_channel_counts_failures_and_the_others_still_deliver() -> None:
    with Webhook() as hook:
        sink = AlertSink([(f"json://127.0.0.1:{closed_port()}/hook", None), (hook.url(), None)]).start()
        sink.notify("kill", "kill:1", "KILL", urgent=True)
        stats = sink.close(timeout_s=20)
    assert hook.titles() == ["cryptoarb: KILL"]
    dead, live = stats["channels"].values()
    assert dead["failed"] == 1 and dead["sent"] == 0 and live["sent"] == 1


def test_a_hanging_channel_never_blocks_notify_its_queue_drops() -> None:
    with BlackHole() as hole:
        sink = AlertSink([(f"json://127.0.0.1:{hole.port}/hook?rto=30&cto=30", None)], queue_size=2,
                         rate_per_min=0).start()
        handed = [sink.notify("leg_failure", f"k{i}", "x") for i in range(10)]
        # the worker holds one alert in its stuck send; 2 wait; the rest are dropped at once
        assert handed.count(False) >= 7 and handed[:1] == [True]
        stats = sink.close(timeout_s=0.2)
    assert stats["sent"] == 0 and stats["dropped"] == 10, stats


# -- settings: apprise validates offline; URLs never shown raw -----------------------------------

@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name resolution or connection attempt fails the test: validation is parsing only."""

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"network used during validation: {a[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_telegram_and_slack_urls_are_validated_and_redacted_offline(offline: None) -> None:
    tg = f"tgram://{TG_TOKEN}/-100987654321"
    slack = "slack://{}/{}/{}/#alerts".format(*SLACK)
    s = load_settings(alerts={"urls": [tg, slack, "json://u:pw-secret-9@127.0.0.1:9/hook?+X-Token=hdr-secret-1"]})
    stored = s.model_dump_json()
    secrets = [TG_TOKEN.split(":")[1], *SLACK, "pw-secret-9", "hdr-secret-1"]
    for secret in secrets:
        assert secret not in stored
    assert "tgram://" in stored and "slack://" in stored and "json://u:****@127.0.0.1:9/hook" in stored
    known = s.alerts.secrets()
    assert all(x in known for x in secrets)
    # a log line quoting a URL (say, a library's error) is scrubbed by the filter these feed
    rec = logging.LogRecord("apprise", logging.WARNING, __file__, 1, "POST https://api.telegram.org/bot%s/x failed",
                            (TG_TOKEN,), None)
    RedactingFilter(known).filter(rec)
    assert TG_TOKEN.split(":")[1] not in rec.getMessage()

    for bad, why in ((f"tgram://{TG_TOKEN[:4]}", "urls[0] (tgram://...)"), ("slack://onlyone", "urls[0] (slack://...)"),
                     ("nosuch://x/y", "urls[0] (nosuch://...)"), ("", "urls[0] is empty")):
        with pytest.raises(ConfigError) as e:
            load_settings(alerts={"urls": [bad]})
        assert why in str(e.value) and (not bad or bad.partition("://")[2] not in str(e.value))


def test_json_webhook_schemes_and_settings_checks(offline: None) -> None:
    s = load_settings(alerts={"urls": ["jsons://hooks.example.com/alert", "json://127.0.0.1:8080/"],
                              "disabled": ["model_swap"], "rate_per_min": 0})
    assert [private_url(u).split("://")[0] for u in s.alerts.urls] == ["jsons", "json"]
    with pytest.raises(ConfigError, match="unknown alert kind 'trips'"):
        load_settings(alerts={"disabled": ["trips"]})
    with pytest.raises(ConfigError, match=r"alerts\.dedupe_windows: unknown key \(did you mean 'dedupe_window_s'"):
        load_settings(alerts={"dedupe_windows": 3})
    assert AlertSink.from_settings(load_settings()) is None  # no URL: no sink, nothing attached


def test_disabled_kinds_are_not_sent() -> None:
    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)], disabled=["leg_failure"]).start()
    assert not sink.notify("leg_failure", "a", "x")
    assert sink.notify("balance_drift", "binance:USDT", "drift", "ledger 100, venue 99")
    sink.close()
    assert [t for t, _, _ in rec.sent] == ["cryptoarb: drift"] and sink.stats()["filtered"] == 1


# -- what the engine sends --------------------------------------------------------------------------

def _order(oid: str, venue: str, side: str, status: OrderStatus, filled: str, reason: str = "") -> Order:
    o = Order(oid, venue, "BTC/USDT", side, Decimal("0.5"), Decimal(100), Decimal(100), 1, status=status,
              filled_qty=Decimal(filled), reason=reason)
    return o


def test_trades_whose_legs_did_not_both_fill_are_alerts_others_are_not() -> None:
    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)], rate_per_min=0).start()

    def trade(tid: int, status: ArbStatus, sell: OrderStatus, filled: str, unhedged: str = "0") -> ArbTrade:
        return ArbTrade(tid, tid, "BTC/USDT", _order(f"r-{tid}b", "binance", "buy", OrderStatus.FILLED, "0.5"),
                        _order(f"r-{tid}s", "okx", "sell", sell, filled, "rejected: insufficient balance"),
                        Decimal(1), Decimal("0.5"), 1, status=status, unhedged_qty_base=Decimal(unhedged),
                        closed_ns=5)

    assert trade_alert(sink, trade(1, ArbStatus.FAILED_LEG, OrderStatus.REJECTED, "0", "0.5"), "r")
    assert not trade_alert(sink, trade(2, ArbStatus.COMPLETE, OrderStatus.FILLED, "0.5"), "r")
    assert not trade_alert(sink, trade(3, ArbStatus.PARTIAL, OrderStatus.FILLED, "0.5"), "r")  # nothing unhedged
    assert trade_alert(sink, trade(4, ArbStatus.PARTIAL, OrderStatus.PARTIALLY_FILLED, "0.2", "0.3"), "r")
    pending = trade(5, ArbStatus.FAILED_LEG, OrderStatus.REJECTED, "0", "0.5")
    pending.closed_ns = 0
    assert not trade_alert(sink, pending, "r")  # not settled yet
    sink.close()
    (t1, b1, l1), (t4, _, l4) = rec.sent
    assert t1 == "cryptoarb: one leg failed: unhedged exposure (BTC/USDT)" and l1 == "failure"
    assert "sell okx BTC/USDT: rejected (rejected: insufficient balance), filled 0/0.5" in b1
    assert "unhedged 0.5 base" in b1 and '"trade_id": 1' in b1 and '"run_id": "r"' in b1
    assert t4 == "cryptoarb: legs filled unequally: unhedged residual (BTC/USDT)" and l4 == "failure"


def test_reconciliation_and_balance_drift_alerts_for_other_producers() -> None:
    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)], rate_per_min=0).start()
    assert reconciliation_alert(sink, "binance", ["x1", "x2"], 3, run_id="r")
    assert not reconciliation_alert(sink, "binance", message="order x3 unknown")  # same venue: counted
    assert balance_drift_alert(sink, "okx", "USDT", Decimal("100.00"), Decimal("99.50"))
    sink.close()
    (t1, b1, l1), (t2, b2, _), (t3, b3, _) = rec.sent
    assert t3 == t1
    assert t1 == "cryptoarb: reconciliation surprise on binance" and l1 == "failure"
    assert "2 venue order(s) unknown to the journal: x1, x2" in b1 and "3 missed fill(s)" in b1
    assert t2 == "cryptoarb: balance drift on okx USDT" and "ledger 100.00, venue 99.50 (drift -0.50)" in b2
    assert "+1 more alert(s)" in b3 and "order x3 unknown" in b3  # the count, with the latest text, at the end


def _demo_trades(alerts: AlertSink | None, seconds: float = 30, **risk: Any) -> tuple[list[tuple[Any, ...]], Any]:
    settings = load_settings(storage={"enabled": False}, risk=risk)
    demo = build_demo(settings, seed=7)
    with operator_control(demo.engine, alerts):
        demo.run(seconds, live=False, speed=0, start_ns=0)
    legs = demo.engine.run_id + "-"  # order ids are <run id>-<trade><b|s>; the run id is random
    trades = [(t.id, t.status.value, t.realized_pnl, t.created_ns, t.closed_ns, t.buy_order.id.removeprefix(legs),
               t.sell_order.id.removeprefix(legs), t.buy_order.filled_qty, t.sell_order.filled_qty)
              for t in demo.engine.executor.trades]
    return trades, demo.engine


def test_demo_breaker_trips_and_leg_failures_become_alerts() -> None:
    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)], rate_per_min=0, dedupe_window_s=3600).start()
    _trades, engine = _demo_trades(sink, max_loss_streak=1, cooldown_s=3600)
    sink.close()
    trip = next(e for e in engine.risk.events if e.action == "trip")
    titles = [t for t, _, _ in rec.sent]
    assert "cryptoarb: circuit breaker loss_streak TRIPPED: new orders stopped" in titles
    body = next(b for t, b, _ in rec.sent if "TRIPPED" in t)
    assert trip.reason in body and f'"run_id": "{engine.run_id}"' in body and '"limit": 1' in body
    failed = [t for t in engine.executor.trades if t.status == ArbStatus.FAILED_LEG]
    assert failed and any("one leg failed" in t for t in titles)
    assert sink.stats()["raised"] == len(engine.risk.events) + len(failed)


def test_dead_and_hanging_channels_leave_the_trades_unchanged() -> None:
    risk = {"max_loss_streak": 1, "cooldown_s": 1}  # trips, half-opens, resets: plenty of alerts
    baseline, _ = _demo_trades(None, 60, **risk)
    with BlackHole() as hole:
        sink = AlertSink([(f"json://127.0.0.1:{hole.port}/hook?rto=30&cto=30", None),
                          (f"json://127.0.0.1:{closed_port()}/hook", None)],
                         rate_per_min=0, dedupe_window_s=0, queue_size=2).start()
        trades, _engine = _demo_trades(sink, 60, **risk)
        hanging = sink.channels[0]
        stuck = hanging.busy_since > 0  # its first send is still waiting for an answer
        stats = sink.close(timeout_s=0.5)
    assert trades == baseline and len(trades) >= 5
    assert stuck and stats["raised"] > 5  # more than the queue holds: drops
    hung, dead = stats["channels"].values()
    assert hung["sent"] == 0 and hung["dropped"] == stats["raised"]  # none delivered, every one counted
    assert dead["sent"] == 0 and dead["failed"] + dead["dropped"] == stats["raised"] and dead["failed"] > 0


def test_a_signal_kill_lands_before_the_next_message_and_lists_the_orders_in_flight() -> None:
    settings = load_settings(storage={"enabled": False})
    demo = build_demo(settings, seed=7)
    eng, market = demo.engine, demo.market
    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)]).start()
    cancelled: list[list[str]] = []
    eng.on_kill.append(cancelled.append)
    handlers = {v: eng.handler(v) for v in eng.venues}
    with operator_control(eng, sink):
        events = market.events(0, 20 * 10**9)
        for local_ns, venue, raw in events:
            eng.on_message(handlers[venue], raw, local_ns)
            if eng.risk.open_orders:  # a trade was just sent: its two IOC legs are in flight
                break
        in_flight = eng.risk.open_orders
        assert len(in_flight) == 2
        eng.request("kill", "signal", "SIGUSR1 received")
        trades = len(eng.executor.trades)
        local_ns, venue, raw = next(events)
        eng.on_message(handlers[venue], raw, local_ns)
        assert eng.risk.killed  # handled before the message could produce an intent
        for local_ns, venue, raw in events:
            eng.on_message(handlers[venue], raw, local_ns)
        eng.finish()
        assert len(eng.executor.trades) == trades and eng.risk.refused.get("killed", 0) > 0
        assert cancelled == [in_flight]
        kill = next(e for e in eng.risk.events if e.action == "kill")
        assert kill.detail["cancel_orders"] == in_flight and kill.actor == "signal"
        with pytest.raises(ValueError, match="'kill' or 'resume'"):
            eng.request("pause", "x", "y")
        eng.request("resume", "signal", "SIGUSR2 received")
        eng.tick(local_ns + 1)
        assert not eng.risk.killed
    sink.close()
    assert [t for t, _, _ in rec.sent] == ["cryptoarb: KILL SWITCH set by signal: trading stopped",
                                           "cryptoarb: kill switch lifted by signal: trading resumes"]
    assert "2 open order(s) to cancel" in rec.sent[0][1]


def test_a_real_run_stores_and_logs_no_alert_credential(tmp_path: Path) -> None:
    """``arb demo`` with credential-carrying alert URLs whose deliveries fail (so apprise and our
    workers log about them): no secret in any table, in stdout or in stderr."""
    from test_cli import arb
    from test_secrets import _database_text

    pw, hdr, smtp_pw = "PW-json-alert-0101", "HDR-token-alert-0102", "SMTP-pass-alert-0103"
    cfg = tmp_path / "arb.toml"
    cfg.write_text(
        "[risk]\nmax_loss_streak = 1\ncooldown_s = 1\n"
        "[alerts]\nclose_timeout_s = 0.5\nurls = [\n"
        f'  "json://ops:{pw}@127.0.0.1:{closed_port()}/hook?+X-Token={hdr}",\n'
        f'  "mailto://ops:{smtp_pw}@127.0.0.1:{closed_port()}?from=a@example.com&to=b@example.com",\n]\n')
    db = tmp_path / "run.db"
    r = arb("demo", "--duration", "20", "--speed", "0", "--no-live", "--config", str(cfg), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "delivered" in r.stderr and "failed" in r.stderr and "Traceback" not in r.stderr
    text, counts = _database_text(str(db))
    assert counts["runs"] == 1 and counts["audit_log"] > 0
    assert "json://ops:***@127.0.0.1" in text  # the stored settings still say which channels
    for secret in (pw, hdr, smtp_pw):
        assert secret not in text and secret not in r.stdout and secret not in r.stderr, secret


def test_engine_balance_drift_and_live_reconciliation_reach_the_sink() -> None:
    """attach() hears the engine's inventory drift; attach_trading() the live reconciliation."""
    from cryptoarb.alerts.wiring import attach, attach_trading

    rec = Recorder()
    sink = AlertSink([("json://127.0.0.1:9/", rec)], rate_per_min=0).start()
    settings = load_settings(storage={"enabled": False})
    engine = build_demo(settings, seed=7).engine
    attach(engine, sink)
    venue, ccys = next(iter(engine.portfolio.balances.items()))
    asset, held = next(iter(ccys.items()))
    assert engine.inventory.compare({venue: dict(ccys)}, 1) == []  # equal: nothing sent
    assert len(engine.inventory.compare({venue: {**ccys, asset: held - Decimal(1)}}, 2)) == 1

    class Trading:  # what LiveTrading offers its listeners
        def __init__(self) -> None:
            self.on_surprise: list[Any] = []

    trading = Trading()
    attach_trading(trading, sink, engine.run_id)
    for fn in trading.on_surprise:
        fn("binance", "order abc unknown to the journal")
    sink.close()
    titles = [t for t, _, _ in rec.sent]
    assert titles == [f"cryptoarb: balance drift on {venue} {asset}", "cryptoarb: reconciliation surprise on binance"]
    assert "order abc unknown to the journal" in rec.sent[1][1]
