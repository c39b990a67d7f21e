import type { Venue } from '../types';
import { fmt } from '../format';

const healthy = (v: Venue) => v.connected ?? ['up', 'live', 'connected'].includes(String(v.state ?? ''));

/** Feed health per venue: connection state, how old its books are, native handler or ccxt. */
export function Venues({ rows }: { rows: Venue[] }) {
  return (
    <section className="card" aria-labelledby="venues-h">
      <h2 id="venues-h">Venues</h2>
      <div className="scroll">
        <table aria-label="venues">
          <thead>
            <tr>
              <th>venue</th>
              <th>state</th>
              <th>path</th>
              <th className="num">book age ms</th>
              <th className="num">msg/s</th>
              <th className="num">resyncs</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((v) => (
              <tr key={v.venue}>
                <td>{v.venue}</td>
                <td>
                  <span className={`badge ${healthy(v) ? 'ok' : 'bad'}`}>{v.state ?? (v.connected ? 'connected' : 'down')}</span>
                </td>
                <td>{v.path ?? '-'}</td>
                <td className="num">{fmt(v.book_age_ms, 0)}</td>
                <td className="num">{fmt(v.messages_per_s, 1)}</td>
                <td className="num">{v.resyncs ?? '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length === 0 && <p className="muted">No venues.</p>}
      </div>
    </section>
  );
}
