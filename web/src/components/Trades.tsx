import type { Trade } from '../types';
import { num } from '../live';
import { clock, fmt, signed, tone } from '../format';

/** Arbitrage trades with what the detector expected next to what the fills realised; the
 * difference is the slippage/latency cost the paper (or live) venue really charged. */
export function Trades({ rows, limit = 50 }: { rows: Trade[]; limit?: number }) {
  const settled = rows.filter((t) => t.closed_ns);
  const expected = settled.reduce((s, t) => s + (num(t.expected_pnl) || 0), 0);
  const realised = settled.reduce((s, t) => s + (num(t.realized_pnl) || 0), 0);
  return (
    <section className="card" aria-labelledby="trades-h">
      <h2 id="trades-h">
        Trades <span className="muted">({rows.length})</span>
      </h2>
      <p className="totals">
        settled {settled.length}: expected <span className={tone(expected)}>{signed(expected)}</span> · realised{' '}
        <span className={tone(realised)} data-testid="realised-total">
          {signed(realised)}
        </span>
      </p>
      <div className="scroll">
        <table aria-label="trades">
          <thead>
            <tr>
              <th className="hide-sm">time</th>
              <th>#</th>
              <th>group</th>
              <th>status</th>
              <th className="num">expected</th>
              <th className="num">realised</th>
              <th className="num">diff</th>
              <th className="num hide-sm">fees</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, limit).map((t) => {
              const diff = t.closed_ns ? num(t.realized_pnl) - num(t.expected_pnl) : NaN;
              return (
                <tr key={`${t.run_id ?? ''}/${t.id}`} data-testid="trade" data-id={t.id} title={legs(t)}>
                  <td className="hide-sm">{clock(t.created_ns)}</td>
                  <td>{t.id}</td>
                  <td>{t.group}</td>
                  <td>
                    <span className={`badge ${t.status}`}>{t.status}</span>
                  </td>
                  <td className={`num ${tone(t.expected_pnl)}`}>{signed(t.expected_pnl)}</td>
                  <td className={`num ${tone(t.realized_pnl)}`}>{t.closed_ns ? signed(t.realized_pnl) : '…'}</td>
                  <td className={`num ${tone(diff)}`}>{signed(diff)}</td>
                  <td className="num hide-sm">{fmt(t.fees_quote)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {rows.length === 0 && <p className="muted">None yet.</p>}
      </div>
    </section>
  );
}

function legs(t: Trade): string {
  return (t.legs ?? []).map((l) => `${l.side} ${fmt(l.filled_qty ?? l.qty, 4)} ${l.symbol} @ ${l.venue} ${fmt(l.avg_price, 2)}`).join('\n');
}
