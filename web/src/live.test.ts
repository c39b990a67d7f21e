import { describe, expect, it } from 'vitest';
import { MAX_EVENTS, MAX_ROWS, addPoint, groupSpreadBps, initialState, reduce } from './live';
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
    for (let i = 1; i <= MAX_ROWS + 5; i++) s = reduce(s, { kind: 'event', event: { type: 'opportunity', data: { ...opp(i) } as Record<string, unknown> } });
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

  it('derives the spread of a group from the best bid and ask across its valid books', () => {
    const msg = (sec: number, books: [string, number, number, boolean?][]) => ({
      kind: 'event' as const,
      event: {
        type: 'book',
        ts: sec * 1e9,
        data: { group: 'BTC/USDT', label: 'BTC/USDT spot', books: books.map(([venue, bid, ask, valid = true]) => ({ key: `${venue} BTC/USDT`, venue, valid, bid: [bid, 1], ask: [ask, 1] })) },
      },
    });
    let s = reduce(initialState, msg(10, [['binance', 100, 100.02]]));
    expect(s.spreads['BTC/USDT'][0].value).toBeCloseTo((-0.02 / 100.01) * 1e4);
    s = reduce(s, msg(10, [['binance', 100, 100.02], ['okx', 100.05, 100.07]])); // okx bids above binance's ask
    expect(s.spreads['BTC/USDT']).toHaveLength(1); // same second: replaced
    expect(s.spreads['BTC/USDT'][0].value).toBeCloseTo((0.03 / 100.035) * 1e4);
    s = reduce(s, msg(11, [['binance', 100, 100.02], ['okx', 100.05, 100.07, false]])); // a resyncing book does not count
    expect(s.spreads['BTC/USDT'].map((p) => p.time)).toEqual([10, 11]);
    expect(s.spreads['BTC/USDT'][1].value).toBeCloseTo((-0.02 / 100.01) * 1e4);
    expect(s.tops['BTC/USDT'].label).toBe('BTC/USDT spot');
  });

  it('takes the risk state from risk messages and keeps the latest audit events', () => {
    let s = reduce(initialState, { kind: 'event', event: { type: 'risk', data: { killed: false, breakers: [{ name: 'loss', state: 'closed', trips: 0 }] } } });
    expect(s.risk?.breakers.map((b) => [b.name, b.state])).toEqual([['loss', 'closed']]);
    for (let i = 0; i < MAX_EVENTS + 3; i++) {
      s = reduce(s, { kind: 'event', event: { type: 'breaker', data: { actor: 'risk', action: 'risk.trip', reason: `n${i}`, ts_ns: i } } });
    }
    expect(s.events).toHaveLength(MAX_EVENTS);
    expect(s.events[0].reason).toBe(`n${MAX_EVENTS + 2}`);
    s = reduce(s, { kind: 'event', event: { type: 'risk', data: { killed: true, kill_reason: 'operator', breakers: [] } } });
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

describe('PnL series', () => {
  it('joins the stored history and the streamed points in time order, once per timestamp', () => {
    const p = (ts_ns: number, total: string) => ({ ts_ns, realised: total, total });
    let s = reduce(initialState, { kind: 'event', event: { type: 'pnl', data: { ...p(30, '3') } } });
    s = reduce(s, { kind: 'event', event: { type: 'pnl', data: { ...p(40, '4') } } });
    s = reduce(s, { kind: 'pnl', rows: [p(10, '1'), p(20, '2'), p(30, '3')] }); // a later REST answer
    expect(s.pnl.map((x) => [x.ts_ns, x.total])).toEqual([[10, '1'], [20, '2'], [30, '3'], [40, '4']]);
  });
});

describe('spread helpers', () => {
  it('needs both sides', () => {
    expect(groupSpreadBps({ group: 'g', books: [] })).toBeNull();
    expect(groupSpreadBps({ group: 'g', books: [{ key: 'a X', venue: 'a', bid: [1, 1], ask: null }] })).toBeNull();
  });
  it('keeps chart time ascending', () => {
    const pts = addPoint([{ time: 5, value: 1 }], { time: 4, value: 2 });
    expect(pts).toEqual([{ time: 5, value: 1 }]);
  });
});
