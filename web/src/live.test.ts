import { describe, expect, it } from 'vitest';
import { MAX_ROWS, addPoint, groupSpreadBps, initialState, reduce } from './live';
import type { Opportunity, Trade } from './types';

const opp = (id: number, local_ns = id * 1e9): Opportunity => ({
  id, group: 'BTC/USDT', buy_key: 'okx BTC/USDT', sell_key: 'binance BTC/USDT', qty_base: '0.1', profit_quote: '1.5', profit_bps: 3, local_ns,
});
const trade = (id: number, status: string, realized: string, closed: number | null = null): Trade => ({
  id, group: 'BTC/USDT', status, expected_pnl: '2', realized_pnl: realized, created_ns: id * 1e9, closed_ns: closed,
});

describe('reduce', () => {
  it('puts streamed opportunities first, once each, bounded', () => {
    let s = initialState;
    for (let i = 1; i <= MAX_ROWS + 5; i++) s = reduce(s, { kind: 'event', event: { type: 'opportunity', data: { ...opp(i) } } });
    s = reduce(s, { kind: 'event', event: { type: 'opportunity', data: { ...opp(MAX_ROWS + 5) } } });
    expect(s.opportunities).toHaveLength(MAX_ROWS);
    expect(s.opportunities[0].id).toBe(MAX_ROWS + 5);
    expect(s.opportunities[MAX_ROWS - 1].id).toBe(6);
  });

  it('merges the REST page with what the stream already pushed, newest first', () => {
    let s = reduce(initialState, { kind: 'event', event: { type: 'opportunity', data: { ...opp(10) } } });
    s = reduce(s, { kind: 'opportunities', rows: [opp(10), opp(9), opp(8)] });
    expect(s.opportunities.map((o) => o.id)).toEqual([10, 9, 8]);
  });

  it('updates a trade in place when its legs settle', () => {
    let s = reduce(initialState, { kind: 'event', event: { type: 'trade', data: { ...trade(1, 'open', '0') } } });
    s = reduce(s, { kind: 'event', event: { type: 'trade', data: { ...trade(2, 'open', '0') } } });
    s = reduce(s, { kind: 'event', event: { type: 'trade', data: { ...trade(1, 'done', '1.75', 5e9) } } });
    expect(s.trades.map((t) => [t.id, t.status, t.realized_pnl])).toEqual([
      [2, 'open', '0'],
      [1, 'done', '1.75'],
    ]);
  });

  it('derives the spread of a group from the best bid and ask across its venues', () => {
    let s = initialState;
    const top = (venue: string, bid: number, ask: number, sec: number) => ({
      kind: 'event' as const,
      event: { type: 'book', data: { group: 'BTC/USDT', venue, bid: String(bid), ask: String(ask), ts_ns: sec * 1e9 } },
    });
    s = reduce(s, top('binance', 100, 100.02, 10));
    expect(s.spreads['BTC/USDT'][0].value).toBeCloseTo((-0.02 / 100.01) * 1e4);
    s = reduce(s, top('okx', 100.05, 100.07, 10)); // okx bids above binance's ask: crossed
    expect(s.spreads['BTC/USDT']).toHaveLength(1); // same second: replaced
    expect(s.spreads['BTC/USDT'][0].value).toBeCloseTo((0.03 / 100.035) * 1e4);
    s = reduce(s, top('okx', 99.99, 100.01, 11));
    expect(s.spreads['BTC/USDT'].map((p) => p.time)).toEqual([10, 11]);
    expect(Object.keys(s.tops['BTC/USDT']).sort()).toEqual(['binance', 'okx']);
  });

  it('tracks breakers and the kill switch from stream events', () => {
    let s = reduce(initialState, { kind: 'risk', risk: { killed: false, breakers: [{ name: 'loss', state: 'closed' }] } });
    s = reduce(s, { kind: 'event', event: { type: 'breaker', data: { name: 'loss', state: 'open', reason: 'daily loss' } } });
    s = reduce(s, { kind: 'event', event: { type: 'breaker', data: { name: 'errors', state: 'closed' } } });
    expect(s.risk?.breakers).toEqual([
      { name: 'errors', state: 'closed', reason: undefined },
      { name: 'loss', state: 'open', reason: 'daily loss' },
    ]);
    s = reduce(s, { kind: 'event', event: { type: 'kill', data: { killed: true, reason: 'operator' } } });
    expect(s.risk?.killed).toBe(true);
    expect(s.risk?.kill_reason).toBe('operator');
  });

  it('updates one venue from a venue event and ignores unknown events', () => {
    let s = reduce(initialState, { kind: 'venues', rows: [{ venue: 'okx', state: 'live', resyncs: 0 }] });
    s = reduce(s, { kind: 'event', event: { type: 'venue', data: { venue: 'okx', state: 'stale' } } });
    s = reduce(s, { kind: 'event', event: { type: 'venue', data: { venue: 'binance', state: 'live' } } });
    expect(s.venues).toEqual([
      { venue: 'binance', state: 'live' },
      { venue: 'okx', state: 'stale', resyncs: 0 },
    ]);
    expect(reduce(s, { kind: 'event', event: { type: 'hello', data: {} } })).toBe(s);
  });
});

describe('spread helpers', () => {
  it('needs both sides', () => {
    expect(groupSpreadBps({})).toBeNull();
    expect(groupSpreadBps({ a: { group: 'g', venue: 'a', bid: '1', ask: null } })).toBeNull();
  });
  it('keeps chart time ascending', () => {
    const pts = addPoint([{ time: 5, value: 1 }], { time: 4, value: 2 });
    expect(pts).toEqual([{ time: 5, value: 1 }]);
  });
});
