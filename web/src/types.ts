/** The API's JSON, as the dashboard reads it (field names of the storage rows; decimals may come as strings). */

export type Num = number | string;

export interface Opportunity {
  id: number;
  run_id?: string;
  group: string;
  label?: string;
  buy_key: string;
  sell_key: string;
  qty_base: Num;
  buy_vwap?: Num;
  sell_vwap?: Num;
  profit_quote: Num;
  profit_bps: Num;
  fees_quote?: Num;
  local_ns: number;
}

export interface Leg {
  id?: string;
  venue: string;
  symbol: string;
  side: string;
  qty?: Num;
  filled_qty?: Num;
  avg_price?: Num;
  status?: string;
  fee?: Num;
}

export interface Trade {
  id: number;
  run_id?: string;
  opportunity_id?: number;
  group: string;
  status: string;
  expected_pnl: Num;
  realized_pnl: Num;
  fees_quote?: Num;
  unhedged_qty_base?: Num;
  created_ns: number;
  closed_ns?: number | null;
  legs?: Leg[];
}

export interface PnlPoint {
  ts_ns: number;
  realised: Num;
  unrealised?: Num;
  total: Num;
  unhedged_quote?: Num;
}

export interface Balance {
  venue: string;
  asset: string;
  amount: Num;
}

export interface Venue {
  venue: string;
  state?: string;
  connected?: boolean;
  path?: string;
  book_age_ms?: number | null;
  messages_per_s?: number | null;
  resyncs?: number;
}

export interface Breaker {
  name: string;
  state: string;
  reason?: string;
  trips?: number;
}

export interface Risk {
  /** null: unknown (`arb api` without an engine and without a kill file) */
  killed: boolean | null;
  kill_reason?: string;
  breakers: Breaker[];
  exposure?: Record<string, unknown> | null;
  limits?: Record<string, unknown>;
}

/** One book of a group on the stream's `book` message: best bid / ask as [price, qty]. */
export interface GroupBook {
  key: string;
  venue: string;
  valid?: boolean;
  age_ms?: number | null;
  bid: [number, number] | null;
  ask: [number, number] | null;
}

/** The stream's `book` message: the top of book of every member of an equivalence group. */
export interface GroupTops {
  group: string;
  label?: string;
  books: GroupBook[];
}

/** A risk audit event (the stream's `breaker` message): trips, resets, kills, resumes. */
export interface RiskEvent {
  actor: string;
  action: string;
  reason: string;
  ts_ns: number;
}

export interface SpreadPoint {
  time: number; // unix seconds
  value: number; // bps
}
