import { num } from './live';

/** A number with a fixed count of decimals and thousands separators; '-' when there is none. */
export function fmt(x: unknown, dp = 2): string {
  const n = num(x);
  if (!Number.isFinite(n)) return '-';
  // no '-0.0': a value that rounds to zero is zero
  const r = Math.abs(n) < 0.5 * 10 ** -dp ? 0 : n;
  return r.toLocaleString('en-US', { minimumFractionDigits: dp, maximumFractionDigits: dp });
}

/** Signed, for PnL: '+1.23' / '-1.23'. */
export function signed(x: unknown, dp = 2): string {
  const n = num(x);
  if (!Number.isFinite(n)) return '-';
  return (n > 0 ? '+' : '') + fmt(n, dp);
}

/** CSS class for a PnL value. */
export function tone(x: unknown): string {
  const n = num(x);
  return !Number.isFinite(n) || n === 0 ? '' : n > 0 ? 'pos' : 'neg';
}

/** HH:MM:SS (UTC) of a nanosecond timestamp. */
export function clock(ns: unknown): string {
  const n = num(ns);
  if (!Number.isFinite(n) || n <= 0) return '-';
  return new Date(n / 1e6).toISOString().slice(11, 19);
}

/** 'binance BTC/USDT' -> 'binance' (an instrument key's venue). */
export function venueOf(key: string): string {
  const i = key.indexOf(' ');
  return i > 0 ? key.slice(0, i) : key;
}
