import type { Balance, Num } from '../types';
import { fmt } from '../format';

/** Balances per venue (assets as columns) and the risk manager's exposure. */
export function Balances({ rows, exposure }: { rows: Balance[]; exposure?: Record<string, Num> | null }) {
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
      {exposure && Object.keys(exposure).length > 0 && (
        <dl className="kv" aria-label="exposure">
          {Object.entries(exposure).map(([k, v]) => (
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
