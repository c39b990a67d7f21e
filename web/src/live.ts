/**
 * The dashboard's live state: what the REST endpoints load at start, merged with what the
 * stream pushes. Pure functions (a reducer), so the merging rules are unit-tested without a
 * browser: lists are bounded (newest first), trades are upserted by id (a trade's status and
 * realised PnL change as its legs fill), the spread per group is derived from the latest
 * top of book of every venue in it.
 */

import type { Balance, GroupTops, Opportunity, PnlPoint, Risk, RiskEvent, SpreadPoint, Trade, Venue } from './types';
import type { StreamEvent } from './stream';
import { normaliseRisk } from './normalise';

export const MAX_ROWS = 200;
export const MAX_POINTS = 3600;

export interface LiveState {
  opportunities: Opportunity[];
  trades: Trade[];
  pnl: PnlPoint[];
  balances: Balance[];
  venues: Venue[];
  risk: Risk | null;
  tops: Record<string, GroupTops>; // group -> its books' tops
  spreads: Record<string, SpreadPoint[]>; // group -> points
  events: RiskEvent[]; // risk audit events, newest first
}

export const initialState: LiveState = {
  opportunities: [],
  trades: [],
  pnl: [],
  balances: [],
  venues: [],
  risk: null,
  tops: {},
  spreads: {},
  events: [],
};

export type Action =
  | { kind: 'opportunities'; rows: Opportunity[] }
  | { kind: 'trades'; rows: Trade[] }
  | { kind: 'pnl'; rows: PnlPoint[] }
  | { kind: 'balances'; rows: Balance[] }
  | { kind: 'venues'; rows: Venue[] }
  | { kind: 'risk'; risk: Risk }
  | { kind: 'event'; event: StreamEvent };

export const num = (x: unknown): number => (typeof x === 'number' ? x : typeof x === 'string' ? Number(x) : NaN);

function byId<T extends { id: number | string; run_id?: string }>(rows: T[]): T[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = `${r.run_id ?? ''}/${r.id}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** One row per id (the first occurrence wins: pass the fresher rows first), newest first by
 * `time`, at most MAX_ROWS. */
export function mergeRows<T extends { id: number | string; run_id?: string }>(fresh: T[], old: T[], time: (r: T) => number): T[] {
  return byId([...fresh, ...old])
    .sort((a, b) => time(b) - time(a))
    .slice(0, MAX_ROWS);
}

const oppTime = (o: Opportunity) => num(o.local_ns) || 0;
const tradeTime = (t: Trade) => num(t.created_ns) || 0;

/** Best cross-venue spread of a group in bps of the mid: highest bid minus lowest ask over its
 * valid books (positive: the books cross, an opportunity before fees). null without two sides. */
export function groupSpreadBps(g: GroupTops): number | null {
  let bid = -Infinity;
  let ask = Infinity;
  for (const t of g.books ?? []) {
    if (t.valid === false) continue;
    const b = num(t.bid?.[0]);
    const a = num(t.ask?.[0]);
    if (Number.isFinite(b) && b > bid) bid = b;
    if (Number.isFinite(a) && a < ask) ask = a;
  }
  if (!Number.isFinite(bid) || !Number.isFinite(ask)) return null;
  const mid = (bid + ask) / 2;
  return mid > 0 ? ((bid - ask) / mid) * 1e4 : null;
}

/** Append a point, one per second (a later value in the same second replaces it), bounded. */
export function addPoint(points: SpreadPoint[], p: SpreadPoint): SpreadPoint[] {
  const last = points[points.length - 1];
  if (last && p.time < last.time) return points; // out of order: charts need ascending time
  const next = last && last.time === p.time ? [...points.slice(0, -1), p] : [...points, p];
  return next.length > MAX_POINTS ? next.slice(next.length - MAX_POINTS) : next;
}

/** A `book` message: the group's tops, and a spread point at the message's time (publish time;
 * now when the server did not say). */
function onTops(state: LiveState, g: GroupTops, tsNs: number): LiveState {
  if (typeof g.group !== 'string' || !Array.isArray(g.books)) return state;
  const tops = { ...state.tops, [g.group]: g };
  const bps = groupSpreadBps(g);
  if (bps === null) return { ...state, tops };
  const time = Math.floor((tsNs || Date.now() * 1e6) / 1e9);
  return { ...state, tops, spreads: { ...state.spreads, [g.group]: addPoint(state.spreads[g.group] ?? [], { time, value: bps }) } };
}

export const MAX_EVENTS = 20;

/** The stored PnL series (REST: points at each settled trade) joined with what the stream
 * pushed (a point a few times a second), in time order, one point per timestamp. */
export function mergePnl(have: PnlPoint[], more: PnlPoint[]): PnlPoint[] {
  const byTs = new Map<number, PnlPoint>();
  for (const p of [...have, ...more]) byTs.set(num(p.ts_ns), p);
  return [...byTs.entries()]
    .filter(([t]) => Number.isFinite(t))
    .sort((x, y) => x[0] - y[0])
    .map(([, p]) => p)
    .slice(-MAX_POINTS);
}

function onVenue(venues: Venue[], d: Record<string, unknown>): Venue[] {
  if (typeof d.venue !== 'string') return venues;
  const i = venues.findIndex((v) => v.venue === d.venue);
  const v = { ...(i >= 0 ? venues[i] : {}), ...(d as unknown as Venue) };
  return i >= 0 ? venues.map((x, j) => (j === i ? v : x)) : [...venues, v].sort((a, b) => a.venue.localeCompare(b.venue));
}

export function reduce(state: LiveState, a: Action): LiveState {
  switch (a.kind) {
    case 'opportunities':
      return { ...state, opportunities: mergeRows(state.opportunities, a.rows, oppTime) };
    case 'trades':
      return { ...state, trades: mergeRows(state.trades, a.rows, tradeTime) };
    case 'pnl':
      return { ...state, pnl: mergePnl(state.pnl, a.rows) };
    case 'balances':
      return { ...state, balances: a.rows };
    case 'venues':
      return { ...state, venues: a.rows };
    case 'risk':
      return { ...state, risk: a.risk };
    case 'event': {
      const { type, data, ts } = a.event;
      switch (type) {
        case 'opportunity':
          return { ...state, opportunities: mergeRows([data as unknown as Opportunity], state.opportunities, oppTime) };
        case 'trade':
          return { ...state, trades: mergeRows([data as unknown as Trade], state.trades, tradeTime) };
        case 'book':
          return onTops(state, data as unknown as GroupTops, ts ?? 0);
        case 'risk':
          return { ...state, risk: normaliseRisk(data) };
        case 'breaker':
          return { ...state, events: [data as unknown as RiskEvent, ...state.events].slice(0, MAX_EVENTS) };
        case 'venue':
          return { ...state, venues: onVenue(state.venues, data) };
        case 'pnl':
          return { ...state, pnl: mergePnl(state.pnl, [data as unknown as PnlPoint]) };
        default:
          return state;
      }
    }
  }
}
