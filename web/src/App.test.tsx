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
  close() {}
  push(type: string, data: unknown) {
    act(() => this.onmessage?.({ data: JSON.stringify({ type, data }) }));
  }
}

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '');
  return `${b64({ alg: 'HS256' })}.${b64(claims)}.sig`;
}

function server(role: 'admin' | 'viewer') {
  let killed = false;
  const posts: string[] = [];
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
      killed = true;
      return json({ killed, breakers: { daily_loss: 'closed' } });
    }
    if (url === '/api/risk/resume') {
      killed = false;
      return json({ killed, breakers: { daily_loss: 'closed' } });
    }
    const answers: Record<string, unknown> = {
      '/api/risk': { killed, breakers: { daily_loss: 'closed' }, exposure: { max_unhedged_quote: 10 } },
      '/api/venues': [{ venue: 'okx', state: 'live', path: 'native', resyncs: 0 }],
      '/api/balances': { items: [{ venue: 'okx', asset: 'USDT', amount: '50000' }] },
      '/api/pnl': [{ ts_ns: 1e18, realised: '0', unrealised: '0', total: '0' }],
      '/api/opportunities?limit=50': { items: [], total: 0 },
      '/api/trades?limit=50': { items: [], total: 0 },
      '/api/model/version': { version: null, detail: 'no model' },
    };
    return url in answers ? json(answers[url]) : json({ detail: 'not found' }, 404);
  };
  return { fetchImpl: fetchImpl as unknown as typeof fetch, posts };
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
  it('logs in, opens the stream with the token and shows what it pushes', async () => {
    const { ws } = await logIn('admin');
    expect(ws.url).toMatch(/^ws:\/\/localhost(:\d+)?\/api\/stream\?token=ey/);
    act(() => ws.onopen?.());
    expect(screen.getByTestId('stream-status')).toHaveTextContent('live');
    expect(screen.getByTestId('model')).toHaveTextContent('none');
    ws.push('opportunity', { id: 1, group: 'BTC/USDT', buy_key: 'okx BTC/USDT', sell_key: 'binance BTC/USDT', qty_base: '0.1', profit_quote: '3.2', profit_bps: 5, local_ns: 1e18 });
    ws.push('trade', { id: 1, group: 'BTC/USDT', status: 'done', expected_pnl: '3.2', realized_pnl: '2.9', created_ns: 1e18, closed_ns: 1e18 });
    ws.push('book', { group: 'BTC/USDT', venue: 'okx', bid: '100.05', ask: '100.07', ts_ns: 1e18 });
    ws.push('book', { group: 'BTC/USDT', venue: 'binance', bid: '100', ask: '100.02', ts_ns: 1e18 });
    expect(screen.getAllByTestId('opportunity')).toHaveLength(1);
    expect(screen.getByTestId('realised-total')).toHaveTextContent('+2.90');
    expect(await screen.findByText('BTC/USDT', { selector: 'strong' })).toBeInTheDocument();
    const spread = charts.series.filter((s) => s.title === 'spread').at(-1);
    expect(spread?.data).toEqual([{ time: 1e9, value: expect.closeTo(2.999, 2) }]);
    expect(await screen.findByText('50,000.0000')).toBeInTheDocument(); // balances loaded
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
    expect(streamUrl({ protocol: 'http:', host: '127.0.0.1:8000' }, 'a b')).toBe('ws://127.0.0.1:8000/api/stream?token=a%20b');
    expect(streamUrl({ protocol: 'https:', host: 'arb.example' }, 't')).toBe('wss://arb.example/api/stream?token=t');
  });
});
