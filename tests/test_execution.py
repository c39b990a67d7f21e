"""Paper fills, the order state machine, arbitrage settlement and exact accounting."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cryptoarb.core.accounting import Portfolio, fee_asset, spot_need
from cryptoarb.core.book import INVALID, VALID
from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.core.orders import ArbStatus, InvalidTransition, Order, OrderStatus
from cryptoarb.execution.arb import ArbExecutor, ExecConfig
from cryptoarb.execution.paper import PaperVenue
from tests.helpers import book, spot


def order(side="buy", qty="1.5", limit="101", venue="a"):
    return Order(id="o1", venue=venue, symbol="BTC/USDT", side=side, qty=D(qty), limit_price=D(limit),
                 expected_price=D(limit), created_ns=0)


def funded(**amounts):
    pf = Portfolio()
    for key, amt in amounts.items():
        venue, ccy = key.split("_")
        pf.deposit(venue, ccy, D(amt))
    return pf


def test_buy_walks_levels_up_to_the_limit_then_cancels_the_rest():
    pf = funded(a_USDT="1000")
    b = book(spot("a", taker=0.001, fee_side="quote"), [(99.0, 1)], [(100.0, 1.0), (101.0, 0.25), (102.0, 5)])
    o = order(qty="1.5", limit="101")
    fills = PaperVenue("a", pf).execute(o, b, 10)
    assert [(f.price, f.qty) for f in fills] == [(D("100.0"), D("1.0")), (D("101.0"), D("0.25"))]
    assert o.status is OrderStatus.CANCELED and o.filled_qty == D("1.25")
    assert o.avg_price == (D(100) + D("25.25")) / D("1.25")
    fee = (D(100) + D("25.25")) * D("0.001")
    assert o.fee == fee and o.fee_currency == "USDT"
    assert pf.balance("a", "BTC") == D("1.25")
    assert pf.balance("a", "USDT") == D(1000) - D("125.25") - fee  # exact decimals


def test_spot_buy_fee_is_taken_in_the_base_received_by_default():
    """Most venues (Binance, Bybit, OKX, ...) take a spot fee from the asset received."""
    pf = funded(a_USDT="126.25")  # exactly qty x limit: no quote fee on top
    b = book(spot("a", taker=0.001), [(99.0, 1)], [(100.0, 1.0), (101.0, 0.25), (102.0, 5)])
    o = order(qty="1.25", limit="101")
    PaperVenue("a", pf).execute(o, b, 10)
    assert o.status is OrderStatus.FILLED
    assert o.fee == D("1.25") * D("0.001") and o.fee_currency == "BTC"
    assert pf.balance("a", "BTC") == D("1.25") - D("0.00125")
    assert pf.balance("a", "USDT") == 1
    # the fee is valued at each fill's price
    assert sum((f.fee_quote for f in o.fills), D(0)) == D("0.001") * 100 + D("0.00025") * 101
    # a sell on the same rule pays in quote, the asset it receives
    pf2 = funded(a_BTC="1")
    s = order(side="sell", qty="1", limit="99")
    PaperVenue("a", pf2).execute(s, b, 11)
    assert s.fee_currency == "USDT" and pf2.balance("a", "USDT") == D(99) - D("0.099")


@pytest.mark.parametrize(("rule", "buy_ccy", "sell_ccy"), [
    ("get", "BTC", "USDT"), ("give", "USDT", "BTC"), ("quote", "USDT", "USDT"), ("base", "BTC", "BTC"),
])
def test_fee_side_rule(rule, buy_ccy, sell_ccy):
    inst = spot("a", fee_side=rule)
    assert fee_asset(inst, "buy") == buy_ccy and fee_asset(inst, "sell") == sell_ccy
    # the balance a venue checks includes the fee only when it is taken from what is spent
    ccy, need = spot_need(inst, "buy", D(2), D(100), D("0.001"))
    assert ccy == "USDT" and need == (D("200.2") if buy_ccy == "USDT" else D(200))
    ccy, need = spot_need(inst, "sell", D(2), D(100), D("0.001"))
    assert ccy == "BTC" and need == (D("2.002") if sell_ccy == "BTC" else D(2))


def test_venue_rule_and_bad_fee_side():
    assert fee_asset(spot("coinbase"), "buy") == "USDT"  # Coinbase charges in quote
    assert fee_asset(spot("binance"), "buy") == "BTC"
    with pytest.raises(ValueError, match="fee_side"):
        spot("a", fee_side="bnb")


def test_sell_fills_fully_and_fee_is_in_quote():
    pf = funded(a_BTC="2")
    b = book(spot("a", taker=0.002), [(100.0, 3.0)], [(101.0, 1)])
    o = order(side="sell", qty="2", limit="99")
    PaperVenue("a", pf).execute(o, b, 10)
    assert o.status is OrderStatus.FILLED
    assert pf.balance("a", "BTC") == 0
    assert pf.balance("a", "USDT") == D(200) - D("0.4")


def test_rejections_insufficient_balance_invalid_book_and_venue_failure():
    b = book(spot("a"), [(99.0, 1)], [(100.0, 5.0)])
    o = order(qty="1", limit="100")
    PaperVenue("a", funded(a_USDT="50")).execute(o, b, 10)
    assert o.status is OrderStatus.REJECTED and "insufficient USDT" in o.reason
    b.set_state(INVALID)
    o = order(qty="1", limit="100")
    PaperVenue("a", funded(a_USDT="500")).execute(o, b, 10)
    assert o.status is OrderStatus.REJECTED and "book unavailable" in o.reason
    b.set_state(VALID)
    o = order(qty="1", limit="100")
    PaperVenue("a", funded(a_USDT="500"), fail_rate=1.0).execute(o, b, 10)
    assert o.status is OrderStatus.FAILED


def test_no_liquidity_within_limit_cancels_with_no_fill():
    b = book(spot("a"), [(99.0, 1)], [(100.0, 5.0)])
    o = order(qty="1", limit="99.5")
    assert PaperVenue("a", funded(a_USDT="500")).execute(o, b, 10) == []
    assert o.status is OrderStatus.CANCELED and o.filled_qty == 0


def test_state_machine_refuses_illegal_transitions():
    o = order()
    with pytest.raises(InvalidTransition):
        o.transition(OrderStatus.FILLED, 1)
    o.transition(OrderStatus.SUBMITTED, 1)
    o.transition(OrderStatus.CANCELED, 2)
    with pytest.raises(InvalidTransition):
        o.transition(OrderStatus.SUBMITTED, 3)


def opportunity(qty=1.0, buy_px=100.0, sell_px=101.0, profit=0.799):
    buy = OrderIntent("a", "BTC/USDT", BUY, qty, buy_px, buy_px)
    sell = OrderIntent("b", "BTC/USDT", SELL, qty, sell_px, sell_px)
    return Opportunity(1, "BTC/USDT", "spot", buy, sell, qty, buy_px, sell_px, buy_px * qty * 1.001,
                       0.201, profit, 0, 0)


def executor(books, pf, latency_ns=1_000):
    return ArbExecutor(pf, {"a": PaperVenue("a", pf), "b": PaperVenue("b", pf)}, books.get,
                       ExecConfig(default_latency_ns=latency_ns), run_id="t")


def test_arb_fills_after_latency_and_books_realised_next_to_expected():
    a = book(spot("a", fee_side="quote"), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", fee_side="quote"), [(101.0, 1.0)], [(102.0, 5)])
    pf = funded(a_USDT="1000", b_BTC="1")
    ex = executor({a.key: a, b.key: b}, pf)
    trade = ex.submit(opportunity(), 0)
    assert trade is not None and ex.submit(opportunity(), 0) is None  # one in flight per pair
    ex.advance(999)
    assert trade.status is ArbStatus.PENDING
    ex.advance(1_000)
    assert trade.status is ArbStatus.COMPLETE
    assert trade.expected_pnl == D("0.799")
    assert trade.realized_pnl == D("101.0") - D("100.0") - D("0.1") - D("0.101")
    # balances moved exactly by the fills
    assert pf.balance("a", "BTC") == 1 and pf.balance("b", "BTC") == 0
    assert pf.balance("a", "USDT") + pf.balance("b", "USDT") == D(1000) + trade.realized_pnl


def test_book_moving_away_during_latency_leaves_a_failed_leg():
    a = book(spot("a", fee_side="quote"), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", fee_side="quote"), [(101.0, 1.0)], [(102.0, 5)])
    pf = funded(a_USDT="1000", b_BTC="1")
    ex = executor({a.key: a, b.key: b}, pf)
    trade = ex.submit(opportunity(), 0)
    b.apply([(101.0, 0.0), (100.5, 2.0)], [])  # the bid we wanted is gone before we arrive
    ex.drain()
    assert trade.status is ArbStatus.FAILED_LEG
    assert trade.sell_order.status is OrderStatus.CANCELED
    assert trade.unhedged_qty_base == D(1)  # long 1 BTC on a, unhedged
    assert trade.realized_pnl == -D("0.1")  # only the buy fee: no matched quantity
    assert ex.stats.by_status == {"failed_leg": 1}


def test_partial_fill_on_one_leg_is_partial_with_residual():
    a = book(spot("a", fee_side="quote"), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b", fee_side="quote"), [(101.0, 1.0)], [(102.0, 5)])
    pf = funded(a_USDT="1000", b_BTC="1")
    ex = executor({a.key: a, b.key: b}, pf)
    trade = ex.submit(opportunity(), 0)
    b.apply([(101.0, 0.4)], [])
    ex.drain()
    assert trade.status is ArbStatus.PARTIAL
    assert trade.matched_qty_base == D("0.4") and trade.unhedged_qty_base == D("0.6")
    assert trade.realized_pnl == D("0.4") * (D(101) - D(100)) - D("0.1") - D("0.0404")


def test_two_orders_between_book_updates_cannot_take_the_same_liquidity():
    pf = funded(a_USDT="1000")
    b = book(spot("a", taker=0.0), [(99.0, 1)], [(100.0, 1.0), (101.0, 1.0)])
    venue = PaperVenue("a", pf)
    o1 = order(qty="0.8", limit="101")
    o2 = order(qty="0.8", limit="101")
    o2.id = "o2"
    venue.execute(o1, b, 10)
    venue.execute(o2, b, 11)
    assert [(f.price, f.qty) for f in o2.fills] == [(D("100.0"), D("0.2")), (D("101.0"), D("0.6"))]
    b.update_id += 1  # the venue publishes a new state: what it shows is what is there
    o3 = order(qty="1", limit="100")
    o3.id = "o3"
    venue.execute(o3, b, 12)
    assert o3.filled_qty == D("1.0")


def test_balances_committed_to_a_trade_in_flight_are_reserved_until_it_settles():
    a = book(spot("a"), [(99.0, 5)], [(100.0, 1.0)])
    b = book(spot("b"), [(101.0, 1.0)], [(102.0, 5)])
    pf = funded(a_USDT="1000", b_BTC="1")
    ex = executor({a.key: a, b.key: b}, pf)
    ex.submit(opportunity(), 0)
    # the venue's rule: qty x limit price, exactly (the buy's fee is charged in the BTC received)
    assert ex.reserved[("a", "USDT")] == D("100.00")
    assert ex.reserved[("b", "BTC")] == D("1")
    ex.drain()
    assert ex.reserved == {}
