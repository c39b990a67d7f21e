import { describe, expect, it, vi } from 'vitest';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

// lightweight-charts draws on a canvas jsdom does not have: record what the charts are given
const charts = vi.hoisted(() => ({ series: [] as { title: string; data: unknown[] }[], removed: 0 }));
vi.mock('lightweight-charts', () => ({
  ColorType: { Solid: 'solid' },
  LineSeries: 'Line',
  createChart: () => ({
    addSeries: (_kind: string, opts: { title: string }) => {
      const s = { title: opts.title, data: [] as unknown[] };
      charts.series.push(s);
      return { setData: (d: unknown[]) => (s.data = d) };
    },
    remove: () => (charts.removed += 1),
    timeScale: () => ({ fitContent: () => {} }),
  }),
}));

import { App, streamUrl } from './App';
import { ApiClient } from './api';

class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((c: { code: number }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  sent: string[] = [];
  close() {}
  send(m: string) {
    this.sent.push(m);
  }
  push(kind: string, data: unknown, ts = 1e18) {
    act(() => this.onmessage?.({ data: JSON.stringify({ kind, ts, data }) }));
  }
}

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}

function server(role: 'admin' | 'viewer') {
  let killed = false;
  const posts: string[] = [];
  const unknown: string[] = [];
  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status });
  const fetchImpl = async (url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    if (method === 'POST') posts.push(url);
    if (url === '/api/login') {
      const { password } = JSON.parse(init?.body as string);
      if (password !== 'pw') return json({ detail: 'invalid credentials' }, 401);
      return json({ access_token: jwt({ sub: 'ann', role, exp: Date.now() / 1000 + 900 }), refresh_token: 'r1', token_type: 'bearer' });
    }
    if (url === '/api/risk/kill') {
      if (role !== 'admin') return json({ detail: 'admin role required' }, 403);
      expect(JSON.parse(init?.body as string)).toEqual({ reason: 'kill from the dashboard by ann' });
      killed = true;
      return json({ killed, changed: true, via: 'engine', detail: 'x', cancel: [] });
    }
    if (url === '/api/risk/resume') {
      killed = false;
      return json({ killed, changed: true, via: 'engine', detail: 'resumed', cancel: [] });
    }
    const answers: Record<string, unknown> = {
      '/api/risk': { engine: true, killed, kill_reason: '', breakers: [{ name: 'daily_loss', state: 'closed', enabled: true, trips: 0 }], exposure: { open_notional: 10, venue_open: {} } },
      '/api/venues': { engine: true, items: [{ venue: 'okx', state: 'up', path: 'native', resyncs: 0 }] },
      '/api/balances?run=r1': { run_id: 'r', ts_ns: 1, items: [{ venue: 'okx', asset: 'USDT', amount: '50000', start: '50000', change: '0', ts_ns: 1 }], inventory: {} },
      '/api/pnl?max_points=2000&run=r1': { run_id: 'r', points: [{ ts_ns: 1e18, currency: 'USDT', realised: '0', unrealised: '0', total: '0' }], total_points: 1 },
      '/api/status': { engine: true, run_id: 'r1', mode: 'demo' },
      '/api/opportunities?limit=50&run=r1': { items: [], total: 0 },
      '/api/trades?limit=50&run=r1': { items: [], total: 0 },
      '/api/model/version': { status: 'no model', name: null, version: null, sha256: null, promoted_at: null, detail: 'no model yet' },
    };
    if (url in answers) return json(answers[url]);
    unknown.push(url);
    return json({ detail: 'not found' }, 404);
  };
  return { fetchImpl: fetchImpl as unknown as typeof fetch, posts, unknown };
}

async function logIn(role: 'admin' | 'viewer') {
  FakeSocket.all = [];
  vi.stubGlobal('WebSocket', FakeSocket);
  const srv = server(role);
  const storage = new Map<string, string>();
  const api = new ApiClient('', srv.fetchImpl, {
    getItem: (k) => storage.get(k) ?? null,
    setItem: (k, v) => void storage.set(k, v),
    removeItem: (k) => void storage.delete(k),
  });
  render(<App api={api} />);
  await userEvent.type(await screen.findByLabelText('Username'), 'ann');
  await userEvent.type(screen.getByLabelText('Password'), 'pw');
  await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
  await screen.findByText('Opportunities', { exact: false });
  await waitFor(() => expect(FakeSocket.all).toHaveLength(1));
  return { srv, ws: FakeSocket.all[0] };
}

describe('App', () => {
  it('logs in, authenticates the stream with the token and shows what it pushes', async () => {
    const { ws, srv } = await logIn('admin');
    expect(ws.url).toMatch(/^ws:\/\/localhost(:\d+)?\/api\/stream$/);
    act(() => ws.onopen?.());
    expect(JSON.parse(ws.sent[0])).toEqual({ type: 'auth', token: expect.stringMatching(/^ey/) });
    ws.push('hello', { user: 'ann', role: 'admin' });
    expect(screen.getByTestId('stream-status')).toHaveTextContent('live');
    expect(screen.getByTestId('model')).toHaveTextContent('none');
    ws.push('opportunity', { id: 1, group: 'BTC/USDT', buy_key: 'okx BTC/USDT', sell_key: 'binance BTC/USDT', qty_base: '0.1', profit_quote: '3.2', profit_bps: 5, local_ns: 1e18 });
    ws.push('trade', { id: 1, group: 'BTC/USDT', status: 'done', expected_pnl: '3.2', realized_pnl: '2.9', created_ns: 1e18, closed_ns: 1e18 });
    ws.push('book', {
      group: 'BTC/USDT',
      label: 'BTC/USDT',
      books: [
        { key: 'okx BTC/USDT', venue: 'okx', valid: true, age_ms: 3, bid: [100.05, 1], ask: [100.07, 2] },
        { key: 'binance BTC/USDT', venue: 'binance', valid: true, age_ms: 1, bid: [100, 1], ask: [100.02, 1] },
      ],
    });
    ws.push('risk', { killed: false, breakers: [{ name: 'failed_legs', state: 'open', trips: 1 }], exposure: {} });
    ws.push('breaker', { actor: 'risk', action: 'risk.trip', reason: '3 failed legs', ts_ns: 1e18, detail: {} });
    expect(screen.getAllByTestId('opportunity')).toHaveLength(1);
    expect(screen.getByTestId('realised-total')).toHaveTextContent('+2.90');
    expect(await screen.findByText('BTC/USDT', { selector: 'strong' })).toBeInTheDocument();
    const spread = charts.series.filter((s) => s.title === 'spread').at(-1);
    expect(spread?.data).toEqual([{ time: 1e9, value: expect.closeTo(2.999, 2) }]);
    expect(screen.getByTestId('spread-now')).toHaveTextContent('3.0');
    expect(screen.getByRole('list', { name: 'breakers' })).toHaveTextContent('open failed_legs (1 trips)');
    expect(screen.getByRole('list', { name: 'risk events' })).toHaveTextContent('risk.trip by risk — 3 failed legs');
    expect(await screen.findByText('50,000.0000')).toBeInTheDocument(); // balances loaded
    expect(await screen.findByText('up')).toHaveClass('ok'); // venues loaded
    expect(srv.unknown).toEqual([]); // every request was one the API answers (of the current run)
  });

  it('lets an admin kill and resume through the API', async () => {
    const { srv } = await logIn('admin');
    const panel = screen.getByRole('region', { name: 'Risk' });
    await waitFor(() => expect(within(panel).getByTestId('kill-state')).toHaveTextContent('armed'));
    await userEvent.click(within(panel).getByRole('button', { name: 'Kill switch' }));
    await userEvent.click(within(panel).getByRole('button', { name: 'Confirm kill' }));
    await waitFor(() => expect(within(panel).getByTestId('kill-state')).toHaveTextContent('KILLED'));
    await userEvent.click(within(panel).getByRole('button', { name: 'Resume trading' }));
    await waitFor(() => expect(within(panel).getByTestId('kill-state')).toHaveTextContent('armed'));
    expect(srv.posts.filter((p) => p.startsWith('/api/risk'))).toEqual(['/api/risk/kill', '/api/risk/resume']);
  });

  it('gives a viewer no kill button', async () => {
    await logIn('viewer');
    const panel = screen.getByRole('region', { name: 'Risk' });
    expect(within(panel).queryByRole('button')).toBeNull();
    expect(screen.getByText('(viewer)')).toBeInTheDocument();
  });

  it('logs out back to the login form, revoking the refresh token', async () => {
    const { srv } = await logIn('viewer');
    await userEvent.click(screen.getByRole('button', { name: 'Log out' }));
    expect(await screen.findByRole('button', { name: 'Log in' })).toBeInTheDocument();
    expect(srv.posts).toContain('/api/logout');
  });

  it('builds the stream URL for http and https pages', () => {
    expect(streamUrl({ protocol: 'http:', host: '127.0.0.1:8000' })).toBe('ws://127.0.0.1:8000/api/stream');
    expect(streamUrl({ protocol: 'https:', host: 'arb.example' })).toBe('wss://arb.example/api/stream');
  });
});
