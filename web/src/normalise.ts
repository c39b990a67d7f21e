/** Tolerant readers of the API's answers: lists as arrays or pages, breakers as a list or a
 * `{name: state}` map, balances as rows or a `{venue: {asset: amount}}` map. */

import { rows } from './api';
import type { Balance, Breaker, Risk } from './types';

export function normaliseRisk(body: unknown): Risk {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const ks = b.kill_switch;
  const killed =
    typeof b.killed === 'boolean'
      ? b.killed
      : typeof ks === 'boolean'
        ? ks
        : ks && typeof ks === 'object' && typeof (ks as Record<string, unknown>).killed === 'boolean'
          ? ((ks as Record<string, unknown>).killed as boolean)
          : false;
  const reasonSrc = ks && typeof ks === 'object' ? (ks as Record<string, unknown>).reason : b.kill_reason;
  let breakers: Breaker[] = [];
  if (Array.isArray(b.breakers)) {
    breakers = (b.breakers as Record<string, unknown>[]).map((x) => ({
      name: String(x.name),
      state: String(x.state),
      reason: typeof x.reason === 'string' ? x.reason : undefined,
      trips: typeof x.trips === 'number' ? x.trips : undefined,
    }));
  } else if (b.breakers && typeof b.breakers === 'object') {
    breakers = Object.entries(b.breakers as Record<string, unknown>).map(([name, v]) =>
      v && typeof v === 'object'
        ? { name, state: String((v as Record<string, unknown>).state), reason: (v as Record<string, unknown>).reason as string | undefined }
        : { name, state: String(v) },
    );
  }
  breakers.sort((x, y) => x.name.localeCompare(y.name));
  const exposure = b.exposure && typeof b.exposure === 'object' ? (b.exposure as Record<string, unknown>) : null;
  return {
    killed,
    kill_reason: typeof reasonSrc === 'string' ? reasonSrc : undefined,
    breakers,
    exposure,
    limits: b.limits as Record<string, unknown> | undefined,
  };
}

export function normaliseBalances(body: unknown): Balance[] {
  const list = rows<Balance>(body);
  if (list.length || Array.isArray(body)) return list;
  const src = body && typeof body === 'object' ? ((body as Record<string, unknown>).balances ?? body) : {};
  const out: Balance[] = [];
  if (Array.isArray(src)) return src as Balance[];
  for (const [venue, assets] of Object.entries(src as Record<string, unknown>)) {
    if (!assets || typeof assets !== 'object') continue;
    for (const [asset, amount] of Object.entries(assets as Record<string, unknown>)) {
      if (typeof amount === 'number' || typeof amount === 'string') out.push({ venue, asset, amount });
    }
  }
  return out;
}

/** The model version to show: the version string, or 'none' when the API answers "no model". */
export function modelLabel(body: unknown): string {
  if (!body || typeof body !== 'object') return 'none';
  const b = body as Record<string, unknown>;
  const v = b.version ?? (b.model && typeof b.model === 'object' ? (b.model as Record<string, unknown>).version : undefined);
  if (typeof v === 'string' && v) return typeof b.name === 'string' ? `${b.name} ${v}` : v;
  return 'none';
}
