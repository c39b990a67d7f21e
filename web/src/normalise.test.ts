import { describe, expect, it } from 'vitest';
import { modelLabel, normaliseBalances, normaliseRisk } from './normalise';

describe('normalise', () => {
  it('reads the risk answer, unknown kill state as null', () => {
    const r = normaliseRisk({
      engine: true,
      killed: true,
      kill_reason: 'api:ann',
      breakers: [{ name: 'win_rate', state: 'open', trips: 2 }, { name: 'daily_loss', state: 'closed', trips: 0 }, 'junk'],
      exposure: { open_notional: 5 },
    });
    expect(r.killed).toBe(true);
    expect(r.kill_reason).toBe('api:ann');
    expect(r.breakers.map((b) => `${b.name}:${b.state}:${b.trips}`)).toEqual(['daily_loss:closed:0', 'win_rate:open:2']);
    expect(r.exposure).toEqual({ open_notional: 5 });
    expect(normaliseRisk({ engine: false, killed: null, breakers: [] }).killed).toBeNull();
    expect(normaliseRisk('nonsense')).toEqual({ killed: null, kill_reason: undefined, breakers: [], exposure: null, limits: undefined });
  });

  it('reads balances and skips malformed rows', () => {
    expect(normaliseBalances({ items: [{ venue: 'okx', asset: 'BTC', amount: '1' }, { amount: '2' }] })).toEqual([{ venue: 'okx', asset: 'BTC', amount: '1' }]);
  });

  it('shows the model version, or none', () => {
    expect(modelLabel({ status: 'ok', name: 'gbm', version: '3' })).toBe('gbm 3');
    expect(modelLabel({ status: 'no model', name: null, version: null })).toBe('none');
    expect(modelLabel(null)).toBe('none');
  });
});
