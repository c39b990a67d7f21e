"""Each venue's documented connection rules: keep-alive, staleness and how fast we may send.

One table, read by the live feed (``live/feed.py``) through ``Handler.connection``, and listed
in ``docs/venues.md`` with its sources (the venues' API documentation and ccxt.pro 4.5.90).

- ``ws_ping``: seconds between WebSocket *protocol* ping frames, or None where the venue
  documents its own keep-alive instead: a text ping we send (``Handler.ping``: OKX ``ping``,
  Bybit ``{"op":"ping"}``, Gate ``spot.ping``, KuCoin ``ping``, Bitget ``ping``, Kraken
  ``{"method":"ping"}``, Bitstamp ``bts:heartbeat``), pings the server sends and we answer
  (HTX ``{"ping"}`` -> ``{"pong"}``; Binance's ping frames, answered by the WebSocket library)
  or heartbeats the venue streams (Bitfinex ``hb``, Kraken ``heartbeat``, Coinbase
  ``heartbeats``, Gemini ``heartbeat``).
- ``stale_after``: seconds without any frame before a connection is declared stale (books
  invalidated, reconnect). It must exceed the longest documented silence of a healthy
  connection: the venue's heartbeat cadence, or the reply to our own ping, with margin.
- ``send_limit`` messages per ``send_window`` seconds (``per_ip``: shared by every connection
  to the venue, else per connection): the venue's documented limit on what a client sends
  (subscriptions, pings, pongs). The feed paces every send to stay under it with a margin
  (``PACING_MARGIN`` on the window) for network jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the window is stretched by this fraction: a burst delayed on the way must still count right
PACING_MARGIN = 0.15


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    ws_ping: float | None
    stale_after: float
    send_limit: int
    send_window: float
    per_ip: bool = False
    source: str = ""


#: what we assume without a documented limit: moderate, per connection
DEFAULT = ConnectionSpec(20.0, 30.0, 10, 1.0, source="no documented limit: 10 messages/s per connection")

SPECS: dict[str, ConnectionSpec] = {
    # Binance pings every 20 s (spot) / 3 min (futures) with protocol frames (answered by the
    # library); "5 incoming messages per second" per connection on spot, 10 on futures.
    "binance": ConnectionSpec(None, 60.0, 5, 1.0, source="Binance spot WebSocket Streams: limits"),
    "binanceusdm": ConnectionSpec(None, 60.0, 10, 1.0, source="Binance USDⓈ-M WebSocket market streams"),
    "binancecoinm": ConnectionSpec(None, 60.0, 10, 1.0, source="Binance COIN-M WebSocket market streams"),
    # Binance.US documents the spot rules: server ping frames, 5 incoming messages per second
    "binanceus": ConnectionSpec(None, 60.0, 5, 1.0, source="Binance.US WebSocket Streams: limits"),
    # Bitfinex: a heartbeat per channel every 15 s; documents 20 connections per minute and 25
    # channels per connection on api-pub, no rate for client messages: our 10/s
    "bitfinex": ConnectionSpec(None, 40.0, 10, 1.0, source="Bitfinex WebSocket v2: Public Channels (rate limit: "
                                                          "20 connections/min; no message rate), heartbeating"),
    # OKX: text "ping" when silent < 30 s (we send every 25 s); 480 (un)subscribe requests/h/connection
    "okx": ConnectionSpec(None, 60.0, 480, 3600.0, source="OKX API v5 WebSocket: connect, limits"),
    # Bybit: {"op":"ping"} every 20 s recommended; v5 "Connect" documents 500 connections per
    # 5 minutes per IP and 10 args per spot request, no rate for client messages: our 10/s
    "bybit": ConnectionSpec(None, 45.0, 10, 1.0, source="Bybit v5 WebSocket: Connect (no message rate), "
                                                       "how to send the heartbeat packet"),
    # Gate: spot.ping (we send every 15 s, it answers spot.pong); Gate states "no limit for
    # message sent" (gateio/gatews#25, a Gate maintainer): our moderate 10/s stays
    "gate": ConnectionSpec(None, 40.0, 10, 1.0, source="Gate API v4 spot WebSocket: application ping/pong; "
                                                      "no client message limit (gateio/gatews#25)"),
    # KuCoin: {"type":"ping"} every pingInterval (18 s) with pingTimeout 10 s; 100 messages / 10 s
    "kucoin": ConnectionSpec(None, 40.0, 100, 10.0, source="KuCoin WebSocket: ping, request rate limit"),
    # HTX: the server pings every 5 s and closes after 2 unanswered; no client message rate found
    # in HTX's spot or USDT-margined WebSocket documentation: our 10/s
    "htx": ConnectionSpec(None, 30.0, 10, 1.0, source="HTX spot WebSocket: heartbeat and connection "
                                                     "(no message rate documented)"),
    # Bitget: text "ping" every 30 s, closed after 2 min without; 10 messages per second
    "bitget": ConnectionSpec(None, 75.0, 10, 1.0, source="Bitget v2 WebSocket: connect, limits"),
    # Kraken v2: a heartbeat every second when subscribed; {"method":"ping"} keeps it explicit.
    # Kraken's spot message rate is dynamic (load dependent, "Exceeded msg rate" when hit), no
    # fixed figure: our 10/s
    "kraken": ConnectionSpec(None, 15.0, 10, 1.0, source="Kraken WebSocket v2: heartbeat, ping; Kraken spot "
                                                        "rate limits (dynamic message rate, no figure)"),
    # Kraken Futures: the client must ping at least every 60 s (protocol ping frames do it);
    # 100 requests per second (ccxt.pro krakenfutures options.requestLimit says the same)
    "krakenfutures": ConnectionSpec(20.0, 60.0, 100, 1.0, source="Kraken Futures WebSocket v1: keep-alive; "
                                                                "Futures rate limits: WebSocket limits (100/s)"),
    # Coinbase: heartbeats channel (1 s); 8 messages per second per IP (bursts of 20 on Exchange)
    "coinbase": ConnectionSpec(20.0, 15.0, 8, 1.0, per_ip=True,
                               source="Coinbase Advanced Trade WebSocket: rate limits"),
    "coinbaseexchange": ConnectionSpec(20.0, 15.0, 8, 1.0, per_ip=True,
                                       source="Coinbase Exchange WebSocket: rate limits, heartbeat"),
    # Bitstamp: bts:heartbeat from the client; no documented WebSocket message rate
    "bitstamp": ConnectionSpec(None, 30.0, 10, 1.0, source="Bitstamp WebSocket API v2: heartbeat "
                                                          "(no message rate documented)"),
    # Gemini v2: a heartbeat every 5 s; Gemini's documented limits (120 requests/min public,
    # "no more than 1 per second" recommended) are REST's; none for the WebSocket: our 10/s
    "gemini": ConnectionSpec(20.0, 20.0, 10, 1.0, source="Gemini market data v2: heartbeats; Rate Limits "
                                                        "(REST only)"),
}


def spec_of(venue: str) -> ConnectionSpec:
    return SPECS.get(venue, DEFAULT)


__all__ = ["DEFAULT", "PACING_MARGIN", "SPECS", "ConnectionSpec", "spec_of"]
