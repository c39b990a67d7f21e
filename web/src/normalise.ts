/** Readers of the API's answers (docs/api.md) that never throw on an unexpected shape: a
 * dashboard shows what it can rather than a blank page when one endpoint changes. */

import { rows } from './api';
import type { Balance, Breaker, Risk } from './types';

const obj = (x: unknown): Record<string, unknown> => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {});

/** `GET /api/risk` or the stream's `risk` message. */
export function normaliseRisk(body: unknown): Risk {
  const b = obj(body);
  const breakers: Breaker[] = (Array.isArray(b.breakers) ? b.breakers : [])
    .map(obj)
    .filter((x) => typeof x.name === 'string')
    .map((x) => ({
      name: x.name as string,
      state: String(x.state),
      reason: typeof x.reason === 'string' ? x.reason : undefined,
      trips: typeof x.trips === 'number' ? x.trips : undefined,
    }))
    .sort((x, y) => x.name.localeCompare(y.name));
  return {
    killed: typeof b.killed === 'boolean' ? b.killed : null,
    kill_reason: typeof b.kill_reason === 'string' && b.kill_reason ? b.kill_reason : undefined,
    breakers,
    exposure: b.exposure && typeof b.exposure === 'object' ? obj(b.exposure) : null,
    limits: b.limits ? obj(b.limits) : undefined,
  };
}

/** `GET /api/balances`: `{items: [{venue, asset, amount, ...}]}`. */
export function normaliseBalances(body: unknown): Balance[] {
  return rows<Balance>(body).filter((r) => r && typeof r.venue === 'string' && typeof r.asset === 'string');
}

/** `GET /api/model/version`: "name version", or 'none' when the API answers "no model". */
export function modelLabel(body: unknown): string {
  const b = obj(body);
  if (b.status !== 'ok' || typeof b.version !== 'string' || !b.version) return 'none';
  return typeof b.name === 'string' && b.name ? `${b.name} ${b.version}` : b.version;
}
