import { useState } from 'react';
import type { Risk, RiskEvent } from '../types';
import type { Role } from '../api';
import { clock } from '../format';

interface Props {
  risk: Risk | null;
  events?: RiskEvent[];
  role: Role;
  onKill: () => Promise<void>;
  onResume: () => Promise<void>;
}

/** Circuit breakers and the kill switch. Kill / resume are offered to admins only (the API
 * refuses a viewer anyway); killing asks for a second click, so a stray tap on a phone does
 * not stop trading. */
export function RiskPanel({ risk, events = [], role, onKill, onResume }: Props) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const admin = role === 'admin';

  async function act(f: () => Promise<void>) {
    setBusy(true);
    setError('');
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  }

  const killed = risk?.killed === true;
  return (
    <section className="card" aria-labelledby="risk-h">
      <h2 id="risk-h">Risk</h2>
      <p>
        Kill switch:{' '}
        <strong className={killed ? 'neg' : 'pos'} data-testid="kill-state">
          {risk === null ? '-' : risk.killed === null ? 'unknown (no engine here)' : killed ? 'KILLED' : 'armed (trading)'}
        </strong>
        {killed && risk?.kill_reason ? <span className="muted"> — {risk.kill_reason}</span> : null}
      </p>
      <ul className="breakers" aria-label="breakers">
        {(risk?.breakers ?? []).map((b) => (
          <li key={b.name}>
            <span className={`badge ${b.state === 'closed' ? 'ok' : 'bad'}`}>{b.state}</span> {b.name}
            {b.reason ? <span className="muted"> — {b.reason}</span> : null}
            {b.trips ? <span className="muted"> ({b.trips} trips)</span> : null}
          </li>
        ))}
      </ul>
      {admin ? (
        <div className="actions">
          {killed ? (
            <button onClick={() => act(onResume)} disabled={busy}>
              Resume trading
            </button>
          ) : confirming ? (
            <>
              <button className="danger" onClick={() => act(onKill)} disabled={busy}>
                Confirm kill
              </button>
              <button onClick={() => setConfirming(false)} disabled={busy}>
                Cancel
              </button>
            </>
          ) : (
            <button className="danger" onClick={() => setConfirming(true)} disabled={busy || risk === null}>
              Kill switch
            </button>
          )}
        </div>
      ) : (
        <p className="muted">Viewer: read-only (kill / resume need an admin).</p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {events.length > 0 && (
        <ul className="events" aria-label="risk events">
          {events.slice(0, 5).map((e, i) => (
            <li key={`${e.ts_ns}-${i}`}>
              <span className="muted">{clock(e.ts_ns)}</span> {e.action} <span className="muted">by {e.actor}</span>
              {e.reason ? <span className="muted"> — {e.reason}</span> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
