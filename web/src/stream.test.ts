import { describe, expect, it, vi } from 'vitest';
import { Stream, backoffMs, parseEvent, type StreamStatus } from './stream';

class FakeSocket {
  static all: FakeSocket[] = [];
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((c: { code: number }) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  /** the client sends (its auth message) */
  send(data: string) {
    this.sent.push(data);
  }
  /** the connection opens and the server accepts the token */
  open() {
    this.onopen?.();
    this.push('{"kind":"hello","ts":1,"data":{"user":"ann","role":"admin"}}');
  }
  push(data: unknown) {
    this.onmessage?.({ data });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
}

function harness(refreshAuth?: () => Promise<boolean>) {
  FakeSocket.all = [];
  const timers: { f: () => void; ms: number }[] = [];
  const events: unknown[] = [];
  const statuses: StreamStatus[] = [];
  let token = 0;
  const s = new Stream({
    url: 'ws://h/api/stream',
    token: async () => `t${++token}`,
    onEvent: (e) => events.push(e),
    onStatus: (st) => statuses.push(st),
    refreshAuth,
    minDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 1 - 1e-9, // no jitter: the delay is the cap
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    setTimer: (f, ms) => timers.push({ f, ms }),
    clearTimer: () => {},
  });
  return { s, timers, events, statuses };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('backoff', () => {
  it('doubles from the minimum up to the cap, with jitter in [0.5, 1)', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffMs(3, 100, 1000, () => 0)).toBe(400);
  });
});

describe('parseEvent', () => {
  it('reads {kind, ts, data} messages, and ignores junk', () => {
    expect(parseEvent('{"kind":"trade","ts":5,"data":{"id":1}}')).toEqual({ type: 'trade', data: { id: 1 }, ts: 5 });
    expect(parseEvent('{"type":"venue","venue":"okx"}')).toEqual({ type: 'venue', data: { type: 'venue', venue: 'okx' }, ts: 0 });
    expect(parseEvent('not json')).toBeNull();
    expect(parseEvent('[1]')).toBeNull();
    expect(parseEvent('{"data":{}}')).toBeNull();
  });
});

describe('Stream', () => {
  it('authenticates with its first message, delivers events and reconnects with growing delays, reset once accepted', async () => {
    const { s, timers, events, statuses } = harness();
    s.start();
    await tick();
    expect(FakeSocket.all[0].url).toBe('ws://h/api/stream');
    FakeSocket.all[0].open();
    expect(FakeSocket.all[0].sent.map((m) => JSON.parse(m))).toEqual([{ type: 'auth', token: 't1' }]);
    FakeSocket.all[0].push('{"kind":"opportunity","ts":9,"data":{"id":7}}');
    expect(events.slice(1)).toEqual([{ type: 'opportunity', data: { id: 7 }, ts: 9 }]);
    FakeSocket.all[0].drop();
    await tick();
    expect(timers.map((t) => Math.round(t.ms))).toEqual([100]);
    timers[0].f();
    await tick();
    FakeSocket.all[1].onopen?.(); // opened but refused before hello
    FakeSocket.all[1].drop(1013); // too many clients: the next wait is longer
    await tick();
    timers[1].f();
    await tick();
    FakeSocket.all[2].drop();
    await tick();
    expect(timers.map((t) => Math.round(t.ms))).toEqual([100, 200, 400]);
    timers[2].f();
    await tick();
    FakeSocket.all[3].open();
    FakeSocket.all[3].drop();
    await tick();
    expect(Math.round(timers[3].ms)).toBe(100);
    expect(FakeSocket.all[3].sent).toEqual(['{"type":"auth","token":"t4"}']); // a fresh token each time
    expect(statuses).toContain('live');
    expect(statuses).toContain('reconnecting');
  });

  it('refreshes the token after an auth refusal, and stops when the session is over', async () => {
    const refresh = vi.fn(async () => false);
    const { s, timers, statuses } = harness(refresh);
    s.start();
    await tick();
    FakeSocket.all[0].onopen?.();
    FakeSocket.all[0].drop(4401);
    await tick();
    expect(refresh).toHaveBeenCalledOnce();
    expect(timers).toHaveLength(0);
    expect(statuses[statuses.length - 1]).toBe('stopped');
  });

  it('stop closes the socket and ignores what it says afterwards', async () => {
    const { s, timers, events } = harness();
    s.start();
    await tick();
    const ws = FakeSocket.all[0];
    ws.open();
    s.stop();
    expect(ws.closed).toBe(true);
    ws.push('{"kind":"trade","data":{"id":1}}');
    ws.drop();
    await tick();
    expect(events.map((e) => (e as { type: string }).type)).toEqual(['hello']);
    expect(timers).toHaveLength(0);
  });
});
