import type { Opportunity } from '../types';
import { clock, fmt, signed, tone, venueOf } from '../format';

/** The latest opportunities the detector found (after every cost), newest first. */
export function Opportunities({ rows, limit = 50 }: { rows: Opportunity[]; limit?: number }) {
  return (
    <section className="card" aria-labelledby="opps-h">
      <h2 id="opps-h">
        Opportunities <span className="muted">({rows.length})</span>
      </h2>
      <div className="scroll">
        <table aria-label="opportunities">
          <thead>
            <tr>
              <th>time</th>
              <th>group</th>
              <th>buy → sell</th>
              <th className="num hide-sm">qty</th>
              <th className="num">bps</th>
              <th className="num">expected</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, limit).map((o) => (
              <tr key={`${o.run_id ?? ''}/${o.id}`} data-testid="opportunity" data-id={o.id}>
                <td>{clock(o.local_ns)}</td>
                <td>{o.group}</td>
                <td>
                  {venueOf(o.buy_key)} → {venueOf(o.sell_key)}
                </td>
                <td className="num hide-sm">{fmt(o.qty_base, 4)}</td>
                <td className="num">{fmt(o.profit_bps, 1)}</td>
                <td className={`num ${tone(o.profit_quote)}`}>{signed(o.profit_quote)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length === 0 && <p className="muted">None yet.</p>}
      </div>
    </section>
  );
}
