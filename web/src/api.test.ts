import { describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, jwtClaims, rows } from './api';

function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;
}

class MemStorage {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const pair = (n: number, role = 'admin') => ({ access_token: jwt({ sub: 'ann', role, n }), refresh_token: `r${n}`, token_type: 'bearer' });

describe('ApiClient', () => {
  it('keeps the access token in memory and only the refresh token in storage', async () => {
    const storage = new MemStorage();
    const f = vi.fn(async () => json(200, pair(1)));
    const api = new ApiClient('', f as unknown as typeof fetch, storage);
    const s = await api.login('ann', 'pw');
    expect(s).toEqual({ username: 'ann', role: 'admin' });
    expect([...storage.m.values()]).toEqual(['r1']);
    expect(api.accessToken).toBe(pair(1).access_token);
    const [url, init] = f.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/login');
    expect(JSON.parse(init.body as string)).toEqual({ username: 'ann', password: 'pw' });
  });

  it('says a refused login is a wrong username or password, and shows other refusals as the server words them', async () => {
    const api = new ApiClient('', (async () => json(401, { detail: 'invalid credentials' })) as typeof fetch, new MemStorage());
    await expect(api.login('ann', 'bad')).rejects.toThrow('wrong username or password');
    const limited = new ApiClient('', (async () => json(429, { detail: 'too many login attempts, retry in 60 s' })) as typeof fetch, new MemStorage());
    await expect(limited.login('ann', 'bad')).rejects.toThrow('too many login attempts, retry in 60 s');
  });

  it('refreshes once on a 401 and retries, concurrent requests sharing the refresh', async () => {
    const storage = new MemStorage();
    let n = 1;
    const calls: string[] = [];
    const f = vi.fn(async (url: string, init?: RequestInit) => {
      calls.push(url);
      if (url === '/api/login') return json(200, pair(1));
      if (url === '/api/token/refresh') {
        expect(JSON.parse(init?.body as string)).toEqual({ refresh_token: `r${n}` });
        n += 1;
        return json(200, pair(n));
      }
      const auth = (init?.headers as Record<string, string>).Authorization;
      return auth === `Bearer ${pair(2).access_token}` ? json(200, [{ id: 1 }]) : json(401, { detail: 'token expired' });
    });
    const api = new ApiClient('', f as unknown as typeof fetch, storage);
    await api.login('ann', 'pw');
    const [a, b] = await Promise.all([api.get('/api/trades'), api.get('/api/opportunities')]);
    expect(a).toEqual([{ id: 1 }]);
    expect(b).toEqual([{ id: 1 }]);
    expect(calls.filter((c) => c === '/api/token/refresh')).toHaveLength(1);
    expect(storage.getItem('cryptoarb.refresh')).toBe('r2'); // rotated
  });

  it('ends the session when the refresh token is refused', async () => {
    const storage = new MemStorage();
    const f = async (url: string) => (url === '/api/login' ? json(200, pair(1)) : json(401, { detail: 'revoked' }));
    const api = new ApiClient('', f as unknown as typeof fetch, storage);
    const ended = vi.fn();
    api.onSessionEnd = ended;
    await api.login('ann', 'pw');
    await expect(api.get('/api/risk')).rejects.toEqual(new ApiError(401, 'revoked'));
    expect(ended).toHaveBeenCalledOnce();
    expect(api.accessToken).toBeNull();
    expect(storage.m.size).toBe(0);
  });

  it('revokes the refresh token on logout and forgets everything even if the server is down', async () => {
    const storage = new MemStorage();
    const bodies: unknown[] = [];
    let up = true;
    const f = async (url: string, init?: RequestInit) => {
      if (url === '/api/logout') {
        bodies.push(JSON.parse(init?.body as string));
        if (!up) throw new TypeError('network down');
        return new Response(null, { status: 204 });
      }
      return json(200, pair(1));
    };
    const api = new ApiClient('', f as unknown as typeof fetch, storage);
    await api.login('ann', 'pw');
    await api.logout();
    expect(bodies).toEqual([{ refresh_token: 'r1' }]);
    expect(api.accessToken).toBeNull();
    await api.login('ann', 'pw');
    up = false;
    await expect(api.logout()).rejects.toThrow('network down');
    expect(api.accessToken).toBeNull();
    expect(storage.m.size).toBe(0);
  });

  it('resumes a reloaded tab from its refresh token, and not without one', async () => {
    const storage = new MemStorage();
    const f = async () => json(200, pair(5, 'viewer'));
    expect(await new ApiClient('', f as unknown as typeof fetch, storage).resume()).toBeNull();
    storage.setItem('cryptoarb.refresh', 'r4');
    expect(await new ApiClient('', f as unknown as typeof fetch, storage).resume()).toEqual({ username: 'ann', role: 'viewer' });
  });

  it('joins FastAPI validation errors into one message', async () => {
    const api = new ApiClient('', (async () => json(422, { detail: [{ msg: 'field required' }, { msg: 'not a number' }] })) as typeof fetch, new MemStorage());
    await expect(api.post('/api/settings', {})).rejects.toThrow('field required; not a number');
  });
});

describe('helpers', () => {
  it('reads JWT claims without trusting them, and garbage as none', () => {
    expect(jwtClaims(jwt({ sub: 'x', role: 'viewer' }))).toEqual({ sub: 'x', role: 'viewer' });
    expect(jwtClaims('not a token')).toEqual({});
    expect(jwtClaims('a.%%%.c')).toEqual({});
  });

  it('reads list answers as arrays or pages', () => {
    expect(rows([1, 2])).toEqual([1, 2]);
    expect(rows({ items: [3], total: 1 })).toEqual([3]);
    expect(rows({ detail: 'x' })).toEqual([]);
    expect(rows(null)).toEqual([]);
  });
});
