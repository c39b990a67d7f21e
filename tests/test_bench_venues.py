"""Per-venue benchmark (bench/venues.py, bench/ccxt_venues.py): smoke tests, no timing thresholds.

The real-data tests replay the cryptofeed captures of ``../shared/data/exchange-captures``; they
skip when that folder is absent on a developer machine and fail when it is absent in CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cryptoarb.bench import ccxt_venues, venues
from cryptoarb.bench.venues import bench_native, capture_groups, load_capture, median_of, summarize


@pytest.fixture(scope="module")
def captures(shared_data_root: Path) -> Path:
    """``../shared/data/exchange-captures`` (conftest skips, or fails in CI, when ../shared/data is absent)."""
    path = shared_data_root / "exchange-captures"
    assert path.is_dir(), f"{path} is missing from ../shared/data"
    return path


def _need_ccxt() -> None:
    if not ccxt_venues.available():
        if os.environ.get("CI"):
            pytest.fail("ccxt is not installed: CI must have it", pytrace=False)
        pytest.skip("ccxt is not installed (dev dependency: pip install -e '.[dev]')")


# ------------------------------------------------------------------------- no data needed


def test_summarize_and_median() -> None:
    s = summarize([1000, 2000, 3000, 4000])
    assert s["count"] == 4
    assert s["p50_us"] == 2.0
    assert s["p99_us"] == 4.0
    assert s["mean_us"] == 2.5
    assert summarize([])["count"] == 0
    runs = [{"a": 1, "k": {"x": 1.0}, "s": "first"}, {"a": 3, "k": {"x": 3.0}, "s": "x"}, {"a": 2, "k": {"x": 2.0}}]
    assert median_of(runs) == {"a": 2, "k": {"x": 2.0}, "s": "first"}


def test_capture_groups_pair_ws_with_its_http(tmp_path: Path) -> None:
    for name in ("BINANCE.ws.1.0", "BINANCE.http.0.0", "BINANCE_FUTURES.ws.1.0", "LONELY.http.0.0"):
        (tmp_path / name).write_text("")
    groups = capture_groups(tmp_path)
    assert sorted(groups) == ["BINANCE", "BINANCE_FUTURES"]
    assert [p.name for p in groups["BINANCE"]] == ["BINANCE.http.0.0", "BINANCE.ws.1.0"]


def test_split_market_ids() -> None:
    assert ccxt_venues._split("GRTUSD") == ("GRT", "USD")
    assert ccxt_venues._split("ethusd") == ("ETH", "USD")
    assert ccxt_venues._split("usdteur") == ("USDT", "EUR")
    assert ccxt_venues._split("yfihusd", (*ccxt_venues._QUOTES, "HUSD")) == ("YFI", "HUSD")


# ------------------------------------------------------------------------- native side


@pytest.mark.realdata
def test_native_binance_capture(captures: Path) -> None:
    r = bench_native(captures / "BINANCE.ws.1.0", runs=2)
    assert r["files"] == ["BINANCE.http.0.0", "BINANCE.ws.1.0"]  # the REST snapshots came along
    assert r["rest_snapshots"] > 0
    assert r["runs"] == 2
    depth = r["DEPTH"]
    assert depth["count"] > 0
    assert depth["p50_us"] > 0 and depth["mean_us"] > 0 and depth["msgs_per_s"] > 0
    assert depth["p50_us"] <= depth["p99_us"]
    assert r["books_total"] > 0
    assert r["books_valid"] == r["books_total"]
    assert r["bad_messages"] == 0
    assert r["errors"] == 0 and r["rest_errors"] == 0


@pytest.mark.realdata
def test_native_reports_a_missing_handler(captures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venues, "handler_class", lambda venue: None)
    r = bench_native(captures / "GEMINI.ws.1.0", runs=1)
    assert r["venue"] == "gemini"
    assert r["handler"] is None
    assert "no native handler" in r["reason"]
    assert "DEPTH" not in r


# ------------------------------------------------------------------------- ccxt side


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("capture", "max_errors", "min_books"),
    [
        ("GEMINI.ws.1.0", 0, 10),  # in-stream snapshots
        ("BITSTAMP.ws.1.0", 0, 9),  # REST snapshots through ccxt's own load_order_book (one market is idle)
    ],
)
def test_ccxt_side_runs_offline(captures: Path, capture: str, max_errors: int, min_books: int) -> None:
    _need_ccxt()
    r = ccxt_venues.bench_ccxt(captures / capture, runs=1)
    assert "reason" not in r, r.get("reason")
    assert r["DEPTH"]["count"] > 0
    assert r["DEPTH"]["p50_us"] > 0 and r["DEPTH"]["mean_us"] > 0
    assert r["errors"] <= max_errors, r["first_errors"]
    assert r["books_ok"] >= min_books
    # the same frames as the native side counts as depth
    cap = load_capture(captures / capture)
    nat = bench_native(cap, runs=1)
    if "reason" not in nat:
        assert r["DEPTH"]["count"] == nat["DEPTH"]["count"]


@pytest.mark.realdata
def test_ccxt_side_gives_a_reason_for_a_legacy_format(captures: Path) -> None:
    _need_ccxt()
    r = ccxt_venues.bench_ccxt(captures / "KRAKEN.ws.50.0", runs=1)
    assert "DEPTH" not in r
    assert "WS v1" in r["reason"]
    assert "built 0 of" in r["reason"]  # confirmed by feeding the frames, not only asserted


def test_ccxt_reason_for_an_exchange_without_driver() -> None:
    _need_ccxt()
    assert ccxt_venues.reason_for("somewhere") is not None
    assert ccxt_venues.reason_for("gemini") is None


# ------------------------------------------------------------------------- both, CLI


@pytest.mark.realdata
def test_main_json(captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert venues.main([str(captures), "--json", "--runs", "1", "--only", "GEMINI", "--only", "KRAKEN"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["capture"] for r in rows] == ["GEMINI", "KRAKEN"]
    for row in rows:
        assert "DEPTH" in row["native"] or "reason" in row["native"]
        assert "DEPTH" in row["ccxt"] or "reason" in row["ccxt"]


@pytest.mark.realdata
def test_main_table(captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert venues.main([str(captures), "--runs", "1", "--only", "OKX", "--no-ccxt"]) == 0
    out = capsys.readouterr().out
    assert "OKX" in out and "okx" in out
