"""Every API endpoint on SQLite and PostgreSQL, against a stored demo run and a demo engine
attached in-process: answers, filters, pagination, kill/resume, settings, and bad input (4xx with
a clear message, nothing changed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select

from cryptoarb.api.hub import StreamHub
from cryptoarb.api.link import EngineLink
from cryptoarb.config import load_settings
from cryptoarb.storage.models import ArbTradeRow, ModelMetadata, OpportunityRow, PnlRow
from cryptoarb.storage.writer import StorageWriter
from tests.api_support import (
    VIEWER,
    Api,
    Pumper,
    add_users,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    make_api,
    open_db,
    store_demo,
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A database with one stored demo run, a stored-data app and an app with a demo engine attached."""
    request.getfixturevalue("cheap_argon2")
    db, url, schema = open_db(request.param, tmp_path_factory.mktemp(request.param))
    add_users(db)
    run_id = store_demo(db, seconds=20, seed=1)
    # a second demo whose engine stays attached (its audit rows go to the same database)
    from cryptoarb.demo.run import build_demo

    w = StorageWriter(db, run_id=uuid.uuid4().hex[:12])
    w.start_run("demo", {"simulated": True})
    d = build_demo(load_settings(), sink=w, seed=1)
    d.run(10, live=False, speed=0)
    w.flush()  # its run row is written by the writer's thread: there before any test reads it
    link = EngineLink(d.engine, StreamHub(), mode="demo", paths={"binance": "simulated"}).attach()
    stored = make_api(db, url, login_per_ip=10_000)
    live = make_api(db, url, link=link, login_per_ip=10_000)
    with stored.client, live.client, Pumper(link):
        yield {"db": db, "url": url, "run": run_id, "stored": stored, "live": live, "engine": d.engine,
               "writer": w, "link": link, "h": stored.auth(), "hv": stored.auth(VIEWER)}
    w.close()
    db.dispose()
    if schema is not None:
        schema.close()


def get(api: Api, path: str, h: dict[str, str], code: int = 200, **params: Any) -> Any:
    r = api.client.get(path, headers=h, params=params)
    assert r.status_code == code, (path, r.status_code, r.text)
    return r.json()


def count(db: Any, model: Any, **where: Any) -> int:
    q = select(func.count()).select_from(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    with db.connect() as conn:
        return int(conn.execute(q).scalar_one())


# -- stored runs ----------------------------------------------------------------------------------------

def test_runs_and_run_detail(env: dict[str, Any]) -> None:
    a, h, rid = env["stored"], env["h"], env["run"]
    page = get(a, "/api/runs", h)
    assert page["total"] == 2 and {r["id"] for r in page["items"]} >= {rid}
    mine = next(r for r in page["items"] if r["id"] == rid)
    assert mine["mode"] == "demo" and mine["ended_ns"] > mine["started_ns"]
    assert mine["trades"] == count(env["db"], ArbTradeRow, run_id=rid) > 0
    assert get(a, "/api/runs", h, mode="live")["total"] == 0
    assert get(a, "/api/runs", h, limit=1, offset=1)["items"][0]["id"] != page["items"][0]["id"]
    detail = get(a, f"/api/runs/{rid}", h)
    assert detail["config"]["seed"] == 1 and detail["opportunities"] == mine["opportunities"]
    assert get(a, "/api/runs/nope", h, 404)["detail"] == "no run 'nope'"


def test_opportunities_filters(env: dict[str, Any]) -> None:
    a, h, rid = env["stored"], env["h"], env["run"]
    page = get(a, "/api/opportunities", h, run=rid, limit=1000)
    assert page["total"] == count(env["db"], OpportunityRow, run_id=rid) == len(page["items"]) > 0
    times = [o["local_ns"] for o in page["items"]]
    assert times == sorted(times, reverse=True)
    cut = sorted(o["profit_bps"] for o in page["items"])[len(times) // 2]
    hi = get(a, "/api/opportunities", h, run=rid, min_profit_bps=cut, limit=1000)
    assert 0 < hi["total"] < page["total"] or hi["total"] == page["total"]
    assert all(o["profit_bps"] >= cut for o in hi["items"])
    assert get(a, "/api/opportunities", h, run="other")["total"] == 0
    grp = page["items"][0]["group"]
    assert all(o["group"] == grp for o in get(a, "/api/opportunities", h, group=grp)["items"])


def test_trades_legs_and_fills(env: dict[str, Any]) -> None:
    a, h, rid = env["stored"], env["h"], env["run"]
    page = get(a, "/api/trades", h, run=rid)
    assert page["total"] == count(env["db"], ArbTradeRow, run_id=rid)
    t = page["items"][0]
    detail = get(a, f"/api/trades/{rid}/{t['id']}", h)
    assert len(detail["legs"]) == 2 and {leg["side"] for leg in detail["legs"]} == {"buy", "sell"}
    assert detail["fills"] and all(f["order_id"] in {leg["id"] for leg in detail["legs"]} for f in detail["fills"])
    assert Decimal(detail["pnl_gap"]) == Decimal(t["realized_pnl"]) - Decimal(t["expected_pnl"])
    assert all(x["status"] == "complete" for x in get(a, "/api/trades", h, status="complete")["items"])
    assert get(a, f"/api/trades/{rid}/999999", h, 404)["detail"].startswith("no trade 999999")
    orders = get(a, "/api/orders", h, run=rid, trade=t["id"])
    assert orders["total"] == 2
    assert all(o["side"] == "buy" for o in get(a, "/api/orders", h, run=rid, side="buy")["items"])
    oid = orders["items"][0]["id"]
    fills = get(a, "/api/fills", h, order=oid)
    assert fills["total"] >= 1 and all(f["order_id"] == oid for f in fills["items"])


def test_balances_and_pnl(env: dict[str, Any]) -> None:
    a, h, rid = env["stored"], env["h"], env["run"]
    b = get(a, "/api/balances", h, run=rid)
    assert b["items"] and all(Decimal(i["amount"]) - Decimal(i["start"] or 0) == Decimal(i["change"])
                              for i in b["items"])
    usdt = sum(Decimal(i["change"]) for i in b["items"] if i["asset"] == "USDT")
    assert Decimal(b["inventory"]["USDT"]) == usdt
    p = get(a, "/api/pnl", h, run=rid, max_points=3)
    n = count(env["db"], PnlRow, run_id=rid)
    assert p["total_points"] == n and len(p["points"]) == min(3, n)
    with env["db"].connect() as conn:
        last = conn.execute(select(PnlRow.total).where(PnlRow.run_id == rid).order_by(PnlRow.ts_ns.desc(),
                                                                                    PnlRow.id.desc())).first()
    assert Decimal(p["points"][-1]["total"]) == last.total
    assert get(a, "/api/pnl", h, run="nope", code=404)["detail"] == "no run 'nope'"
    assert get(a, "/api/balances", h, run="nope", code=404)["detail"] == "no run 'nope'"
    get(a, "/api/pnl", h, 422, max_points=1)


def test_model_endpoints(env: dict[str, Any]) -> None:
    a, h, db = env["stored"], env["h"], env["db"]
    assert get(a, "/api/model/version", h)["status"] == "no model"
    assert get(a, "/api/models", h) == []
    with db.begin() as conn:
        conn.execute(insert(ModelMetadata).values(name="edge", version="3", sha256="ab" * 32, path="/m", metrics={},
                                                  status="promoted"))
    try:
        v = get(a, "/api/model/version", h)
        assert (v["status"], v["name"], v["version"]) == ("ok", "edge", "3")
        assert [m["version"] for m in get(a, "/api/models", h)] == ["3"]
    finally:
        with db.begin() as conn:
            conn.execute(delete(ModelMetadata))


# -- the attached engine --------------------------------------------------------------------------------

def test_engine_state(env: dict[str, Any]) -> None:
    a, h, e = env["live"], env["h"], env["engine"]
    v = get(a, "/api/venues", h)
    assert v["engine"] and {x["venue"] for x in v["items"]} == set(e.venues)
    assert all(x["books"] == 2 for x in v["items"])
    books = get(a, "/api/books", h, depth=3)
    assert len(books["items"]) == len(e.books)
    one = books["items"][0]
    assert len(one["bids"]) <= 3 and one["bids"][0][0] == e.books[one["key"]].top(1)[0][0][0]
    assert get(a, "/api/books", h, key=one["key"])["items"][0]["key"] == one["key"]
    assert "no book" in get(a, "/api/books", h, 404, key="nowhere X/Y")["detail"]
    get(a, "/api/books", h, 422, depth=21)
    st = get(a, "/api/status", h)
    assert st["engine"] and st["run_id"] == e.run_id and st["messages"] == e.messages
    assert get(a, "/api/venues", h) and not get(env["stored"], "/api/venues", h)["engine"]


def test_kill_and_resume_in_process(env: dict[str, Any]) -> None:
    a, h, hv, e = env["live"], env["h"], env["hv"], env["engine"]
    assert not get(a, "/api/risk", h)["killed"]
    assert a.client.post("/api/risk/kill", json={"reason": "drill"}, headers=hv).status_code == 403
    assert not e.risk.killed
    r = a.client.post("/api/risk/kill", json={"reason": "drill"}, headers=h)
    assert r.status_code == 200 and r.json()["via"] == "engine" and r.json()["changed"]
    assert e.risk.killed and e.risk.kill_reason == "drill"
    assert not a.client.post("/api/risk/kill", json={"reason": "again"}, headers=h).json()["changed"]
    env["link"].pump()
    assert get(a, "/api/risk", h)["killed"]
    r = a.client.post("/api/risk/resume", headers=h)
    assert r.status_code == 200 and r.json()["changed"] and not e.risk.killed
    env["writer"].flush()
    actions = {x["action"] for x in get(a, "/api/alerts", h, limit=50)["items"]}
    assert {"risk.kill", "risk.resume"} <= actions
    assert all(x["action"] == "risk.kill" for x in get(a, "/api/alerts", h, action="risk.kill")["items"])


def test_kill_through_the_kill_file(env: dict[str, Any], tmp_path: Path) -> None:
    from cryptoarb.engine import killswitch

    a = env["stored"]
    r = a.client.post("/api/risk/kill", json={"reason": "x"}, headers=env["h"])
    assert r.status_code == 409 and "kill_file" in r.json()["detail"]
    kf = tmp_path / "kill"
    standalone = make_api(env["db"], env["url"], login_per_ip=10_000)
    standalone.ctx.settings = standalone.ctx.settings.model_copy(update={
        "risk": standalone.ctx.settings.risk.model_copy(update={"kill_file": str(kf)})})
    with standalone.client:
        h = standalone.auth()
        r = standalone.client.post("/api/risk/kill", json={"reason": "night"}, headers=h)
        assert r.status_code == 200 and r.json()["via"] == "kill_file"
        assert killswitch.read_kill(str(kf)) == ("api:root", "night")
        assert get(standalone, "/api/risk", h)["killed"] is True
        r = standalone.client.post("/api/risk/resume", headers=h)
        assert r.status_code == 200 and not kf.exists() and killswitch.take_resume(str(kf)) == "api:root"


def test_settings_get_and_put(env: dict[str, Any]) -> None:
    a, h, e = env["live"], env["h"], env["engine"]
    view = get(a, "/api/settings", h)
    assert "min_profit_bps" in view["runtime"]["detector"] and "jwt_secret" not in view["settings"]["api"]
    before = e.detector.limits
    r = a.client.put("/api/settings", json={"detector": {"min_profit_bps": 2.5}, "risk": {"max_open_orders": 7}},
                     headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == {"detector": {"min_profit_bps": 2.5}, "risk": {"max_open_orders": 7}}
    assert e.detector.limits.min_profit_bps == 2.5 and e.detector._thr == 1.00025 and e.risk.config.max_open_orders == 7
    assert get(a, "/api/settings", h)["settings"]["detector"]["min_profit_bps"] == 2.5
    bad = [
        ({"detector": {"min_profit_bps": -1}}, "greater than or equal to 0"),
        ({"detector": {"min_profit_bps": "lots"}}, "valid number"),
        ({"risk": {"min_win_rate": 2}}, "less than or equal to 1"),
        ({"storage": {"url": "sqlite:///x.db"}}, "Extra inputs"),
        ({"detector": {"basis": False}}, "Extra inputs"),  # exists, but not changeable at run time
    ]
    for body, why in bad:
        r = a.client.put("/api/settings", json=body, headers=h)
        assert r.status_code == 422 and why in r.text, (body, r.text)
    r = a.client.put("/api/settings", content=b'{"detector": {"min_profit_bps": 1', headers={
        **h, "content-type": "application/json"})
    assert r.status_code == 422 and "json" in r.text.lower()
    assert e.detector.limits.min_profit_bps == 2.5 and e.risk.config.max_open_orders == 7  # nothing changed
    assert a.client.put("/api/settings", json={}, headers=env["hv"]).status_code == 403
    r = env["stored"].client.put("/api/settings", json={"detector": {"min_profit_bps": 1}}, headers=h)
    assert r.status_code == 409
    a.client.put("/api/settings", json={"detector": {"min_profit_bps": before.min_profit_bps},
                                        "risk": {"max_open_orders": 20}}, headers=h)


def test_oversized_body_is_refused(env: dict[str, Any]) -> None:
    a, h, e = env["live"], env["h"], env["engine"]
    big = b'{"reason": "' + b"x" * 70_000 + b'"}'
    r = a.client.post("/api/risk/kill", content=big, headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and "larger than 65536 bytes" in r.json()["detail"]
    assert not e.risk.killed

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(20):
            yield b"y" * 5_000
        yield b'"}'

    r = a.client.post("/api/risk/kill", content=chunks(), headers={**h, "content-type": "application/json"})
    assert r.status_code == 413 and not e.risk.killed
    r = a.client.post("/api/risk/kill", json={"reason": "r" * 501}, headers=h)
    assert r.status_code == 422 and not e.risk.killed


def test_open_endpoints_and_pages(env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, h = env["live"], env["h"]
    assert a.client.get("/health").json() == {"status": "ok", "database": "ok", "engine": "running", "detail": ""}
    m = a.client.get("/metrics")
    assert m.status_code == 200 and "arb_api_requests_total" in m.text and "arb_engine_messages" in m.text
    assert a.client.get("/openapi.json").json()["info"]["title"] == "cryptoarb API"
    assert a.client.get("/docs").status_code == 200
    r = a.client.get("/")
    assert r.status_code == 404 and "not built" in r.json()["detail"]
    assert a.client.get("/api/nothing", headers=h).status_code == 404
    get(a, "/api/runs", h, 422, limit=0)
    get(a, "/api/runs", h, 422, limit=5000)
    get(a, "/api/trades", h, 422, offset=-1)
    from cryptoarb.api import app as app_mod

    (tmp_path / "index.html").write_text("<html>dash</html>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.js").write_text("js")
    monkeypatch.setattr(app_mod, "STATIC", tmp_path)
    built = make_api(env["db"], env["url"])
    with built.client:
        assert built.client.get("/").text == "<html>dash</html>"
        assert built.client.get("/assets/a.js").text == "js"
        assert built.client.get("/trades/42").text == "<html>dash</html>"  # a client-side route
        assert built.client.get("/../../etc/passwd").text == "<html>dash</html>"
        assert built.client.get("/api/nope").status_code == 404


def test_standalone_venues_come_from_the_hub(env: dict[str, Any]) -> None:
    """``arb api`` beside a bus: whatever publishes ``venue`` messages into the hub is served;
    a message without the documented shape is left out, never a 500."""
    import time

    a, h = env["stored"], env["h"]
    good = {"venue": "kraken", "path": "native", "state": "up", "books": 1, "books_valid": 1, "book_age_ms": 3.0,
            "messages": 10, "messages_per_s": 2.0, "resyncs": 0, "gaps": 0, "connects": 1, "disconnects": 0,
            "last_error": ""}
    a.ctx.hub.publish("venue", good)
    a.ctx.hub.publish("venue", {"venue": "broken", "state": "sideways"})
    deadline = time.monotonic() + 5
    while not get(a, "/api/venues", h)["items"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    v = get(a, "/api/venues", h)
    assert v == {"engine": False, "items": [good]}
