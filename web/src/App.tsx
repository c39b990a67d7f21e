import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { ApiClient, ApiError, jwtClaims, rows, type Session } from './api';
import { Stream, type StreamStatus } from './stream';
import { initialState, reduce } from './live';
import { modelLabel, normaliseBalances, normaliseRisk } from './normalise';
import type { Opportunity, PnlPoint, Trade, Venue } from './types';
import { Login } from './components/Login';
import { SpreadCharts } from './components/SpreadCharts';
import { Opportunities } from './components/Opportunities';
import { Trades } from './components/Trades';
import { PnlCurve } from './components/PnlCurve';
import { Balances } from './components/Balances';
import { Venues } from './components/Venues';
import { RiskPanel } from './components/RiskPanel';

const POLL_MS = 5000; // what the stream does not push (balances) is re-read this often, the rest as a safety net

export function streamUrl(loc: Pick<Location, 'protocol' | 'host'>): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/stream`;
}

export function App(props: { api?: ApiClient }) {
  const [api] = useState(() => props.api ?? new ApiClient()); // one client (and token) for the app's life
  const [session, setSession] = useState<Session | null>(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    api.onSessionEnd = () => setSession(null);
    api
      .resume()
      .then(setSession)
      .finally(() => setReady(true));
  }, [api]);

  const login = useCallback(
    async (u: string, p: string) => {
      setSession(await api.login(u, p));
    },
    [api],
  );
  const logout = useCallback(async () => {
    await api.logout();
    setSession(null);
  }, [api]);

  if (!ready) return <p className="muted center">Loading…</p>;
  if (!session) return <Login onLogin={login} />;
  return <Dashboard api={api} session={session} onLogout={logout} />;
}

function Dashboard({ api, session, onLogout }: { api: ApiClient; session: Session; onLogout: () => void }) {
  const [state, dispatch] = useReducer(reduce, initialState);
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const [model, setModel] = useState('-');
  const [error, setError] = useState('');
  const alive = useRef(true);

  /** GET `path` and hand its answer to `f`; a failure shows in the banner until that path answers again. */
  const get = useCallback(
    async (path: string, f: (b: unknown) => void) => {
      try {
        f(await api.get<unknown>(path));
        if (alive.current) setError((prev) => (prev.startsWith(`${path}:`) ? '' : prev));
      } catch (e) {
        // 401: the session is over (the login form follows); 404: no run stored yet
        if (alive.current && !(e instanceof ApiError && (e.status === 401 || e.status === 404))) {
          setError(`${path}: ${e instanceof Error ? e.message : e}`);
        }
      }
    },
    [api],
  );

  const run = useRef('');
  const load = useCallback(async () => {
    const q = run.current ? `?run=${encodeURIComponent(run.current)}` : '';
    await Promise.all([
      get('/api/risk', (b) => dispatch({ kind: 'risk', risk: normaliseRisk(b) })),
      get('/api/venues', (b) => dispatch({ kind: 'venues', rows: rows<Venue>(b) })),
      get(`/api/balances${q}`, (b) => dispatch({ kind: 'balances', rows: normaliseBalances(b) })),
    ]);
  }, [get]);

  useEffect(() => {
    alive.current = true;
    void (async () => {
      // the run this API is attached to (none for `arb api`: then the latest stored one)
      await get('/api/status', (b) => {
        const id = (b as { run_id?: unknown } | null)?.run_id;
        run.current = typeof id === 'string' ? id : '';
      });
      const q = run.current ? `&run=${encodeURIComponent(run.current)}` : '';
      await Promise.all([
        get(`/api/opportunities?limit=50${q}`, (b) => dispatch({ kind: 'opportunities', rows: rows<Opportunity>(b) })),
        get(`/api/trades?limit=50${q}`, (b) => dispatch({ kind: 'trades', rows: rows<Trade>(b) })),
        // the stored PnL history once; the stream's pnl messages continue it
        get(`/api/pnl?max_points=2000${q}`, (b) => dispatch({ kind: 'pnl', rows: rows<PnlPoint>(b) })),
        get('/api/model/version', (b) => setModel(modelLabel(b))),
        load(),
      ]);
    })();
    const poll = setInterval(() => void load(), POLL_MS);
    const stream = new Stream({
      url: streamUrl(window.location),
      token: async () => {
        // the server closes the stream when the token expires: connect with one that has time left
        const exp = Number(jwtClaims(api.accessToken ?? '').exp);
        if (!api.accessToken || (Number.isFinite(exp) && exp * 1000 - Date.now() < 15_000)) {
          if (!(await api.refresh())) return null;
        }
        return api.accessToken;
      },
      onEvent: (event) => dispatch({ kind: 'event', event }),
      onStatus: setStatus,
      refreshAuth: () => api.refresh(),
    });
    stream.start();
    return () => {
      alive.current = false;
      clearInterval(poll);
      stream.stop();
    };
  }, [api, get, load]);

  const act = useCallback(
    (path: string, body: unknown) => async () => {
      await api.post<unknown>(path, body);
      dispatch({ kind: 'risk', risk: normaliseRisk(await api.get('/api/risk')) });
    },
    [api],
  );
  const kill = useMemo(() => act('/api/risk/kill', { reason: `kill from the dashboard by ${session.username}` }), [act, session.username]);
  const resume = useMemo(() => act('/api/risk/resume', {}), [act]);

  return (
    <div className="app">
      <header>
        <h1>cryptoarb</h1>
        <span className={`badge ${status === 'live' ? 'ok' : 'bad'}`} data-testid="stream-status">
          {status}
        </span>
        <span className="muted">model: <span data-testid="model">{model}</span></span>
        <span className="spacer" />
        <span>
          {session.username} <span className="muted">({session.role})</span>
        </span>
        <button onClick={onLogout}>Log out</button>
      </header>
      {error && (
        <p role="status" className="error banner" onClick={() => setError('')}>
          {error}
        </p>
      )}
      <main className="grid">
        <SpreadCharts spreads={state.spreads} tops={state.tops} />
        <RiskPanel risk={state.risk} events={state.events} role={session.role} onKill={kill} onResume={resume} />
        <PnlCurve points={state.pnl} />
        <Opportunities rows={state.opportunities} />
        <Trades rows={state.trades} />
        <Balances rows={state.balances} exposure={state.risk?.exposure} />
        <Venues rows={state.venues} />
      </main>
    </div>
  );
}
