import { describe, expect, it } from 'vitest';
import { clock, fmt, signed, tone, venueOf } from './format';

describe('format', () => {
  it('fixes decimals, separates thousands, never shows -0', () => {
    expect(fmt('50000', 4)).toBe('50,000.0000');
    expect(fmt(-0.04, 1)).toBe('0.0');
    expect(fmt(-0.06, 1)).toBe('-0.1');
    expect(fmt(null)).toBe('-');
    expect(fmt('abc')).toBe('-');
  });
  it('signs PnL and colours it', () => {
    expect(signed('1.5')).toBe('+1.50');
    expect(signed(-2)).toBe('-2.00');
    expect([tone(1), tone(-1), tone(0), tone(undefined)]).toEqual(['pos', 'neg', '', '']);
  });
  it('reads times and instrument keys', () => {
    expect(clock(0)).toBe('-');
    expect(clock(1_700_000_000_000_000_000)).toBe('22:13:20');
    expect(venueOf('okx BTC/USDT:USDT')).toBe('okx');
  });
});
