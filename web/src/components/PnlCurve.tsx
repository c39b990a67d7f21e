import { useMemo } from 'react';
import type { PnlPoint } from '../types';
import { num } from '../live';
import { signed, tone } from '../format';
import { LineChart } from './LineChart';

/** Realised PnL and total (realised + unrealised marked to the books) over the run, one point
 * per second (the last of that second). */
export function PnlCurve({ points }: { points: PnlPoint[] }) {
  const series = useMemo(() => {
    const realised = new Map<number, number>();
    const total = new Map<number, number>();
    for (const p of points) {
      const t = Math.floor(num(p.ts_ns) / 1e9);
      if (!Number.isFinite(t)) continue;
      realised.set(t, num(p.realised));
      total.set(t, num(p.total));
    }
    const pts = (m: Map<number, number>) =>
      [...m].filter(([, v]) => Number.isFinite(v)).sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value }));
    return [
      { name: 'realised', color: '#66bb6a', points: pts(realised) },
      { name: 'total', color: '#ffca28', points: pts(total) },
    ];
  }, [points]);
  const last = points[points.length - 1];
  return (
    <section className="card" aria-labelledby="pnl-h">
      <h2 id="pnl-h">PnL</h2>
      <p className="totals">
        realised <span className={tone(last?.realised)}>{signed(last?.realised)}</span> · unrealised{' '}
        <span className={tone(last?.unrealised)}>{signed(last?.unrealised)}</span> · total{' '}
        <span className={tone(last?.total)} data-testid="pnl-total">
          {signed(last?.total)}
        </span>
      </p>
      <LineChart series={series} label="PnL curve" />
    </section>
  );
}
