import type { Balance } from '../types';
import { num } from '../live';
import { fmt } from '../format';

/** Balances per venue (assets as columns) and the risk manager's exposure (its quote totals;
 * the per-venue / per-asset breakdowns stay in the API). */
export function Balances({ rows, exposure }: { rows: Balance[]; exposure?: Record<string, unknown> | null }) {
  const totals = Object.entries(exposure ?? {}).filter(([, v]) => Number.isFinite(num(v)));
  const assets = [...new Set(rows.map((b) => b.asset))].sort();
  const venues = [...new Set(rows.map((b) => b.venue))].sort();
  const amount = new Map(rows.map((b) => [`${b.venue}/${b.asset}`, b.amount]));
  return (
    <section className="card" aria-labelledby="bal-h">
      <h2 id="bal-h">Balances &amp; exposure</h2>
      <div className="scroll">
        <table aria-label="balances">
          <thead>
            <tr>
              <th>venue</th>
              {assets.map((a) => (
                <th key={a} className="num">
                  {a}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {venues.map((v) => (
              <tr key={v}>
                <td>{v}</td>
                {assets.map((a) => (
                  <td key={a} className="num">
                    {fmt(amount.get(`${v}/${a}`), 4)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length === 0 && <p className="muted">No balances.</p>}
      </div>
      {totals.length > 0 && (
        <dl className="kv" aria-label="exposure">
          {totals.map(([k, v]) => (
            <div key={k}>
              <dt>{k.replace(/_/g, ' ')}</dt>
              <dd>{fmt(v)}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}
