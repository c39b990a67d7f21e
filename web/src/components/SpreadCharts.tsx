import { useMemo } from 'react';
import type { GroupTops, SpreadPoint } from '../types';
import { fmt } from '../format';
import { LineChart } from './LineChart';

interface Props {
  spreads: Record<string, SpreadPoint[]>;
  tops: Record<string, GroupTops>;
}

/** One chart per equivalence group: its best cross-venue spread (highest bid - lowest ask, bps
 * of mid) over time; positive means the books cross before fees. */
export function SpreadCharts({ spreads, tops }: Props) {
  const groups = Object.keys(spreads).sort();
  return (
    <section className="card wide" aria-labelledby="spread-h">
      <h2 id="spread-h">Cross-venue spread (bps)</h2>
      {groups.length === 0 && <p className="muted">Waiting for books…</p>}
      <div className="spreads">
        {groups.map((g) => (
          <SpreadChart key={g} group={g} points={spreads[g]} tops={tops[g]} />
        ))}
      </div>
    </section>
  );
}

function SpreadChart({ group, points, tops }: { group: string; points: SpreadPoint[]; tops?: GroupTops }) {
  const series = useMemo(() => [{ name: 'spread', color: '#4fc3f7', points }], [points]);
  const last = points[points.length - 1];
  const valid = (tops?.books ?? []).filter((b) => b.valid !== false).length;
  return (
    <figure className="spread" data-group={group}>
      <figcaption>
        <strong>{group}</strong> {tops?.label && tops.label !== group ? <span className="muted">{tops.label} · </span> : null}
        <span className="muted">
          {valid}/{tops?.books.length ?? 0} books · now <span data-testid="spread-now">{last ? fmt(last.value, 1) : '-'}</span> bps
        </span>
      </figcaption>
      <LineChart series={series} height={160} label={`spread of ${group}`} />
    </figure>
  );
}
