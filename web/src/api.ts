/**
 * The REST client. The access token lives only in memory (never in storage an injected script
 * could read later); the refresh token is kept in sessionStorage so a reload of the tab stays
 * logged in, and it is rotated by every refresh and revoked by logout (server-side).
 * A 401 triggers one refresh (shared by concurrent requests) and one retry; when the refresh
 * is refused the session is over and `onSessionEnd` tells the app to show the login again.
 */

export type Role = 'admin' | 'viewer';

export interface Session {
  username: string;
  role: Role;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: string;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

const REFRESH_KEY = 'cryptoarb.refresh';

interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The claims of a JWT, unverified: only to show who is logged in (the server checks everything). */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const claims: unknown = JSON.parse(json);
    return claims && typeof claims === 'object' ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function sessionOf(token: string): Session {
  const c = jwtClaims(token);
  const username = typeof c.sub === 'string' ? c.sub : typeof c.username === 'string' ? c.username : '?';
  return { username, role: c.role === 'admin' ? 'admin' : 'viewer' };
}

/** The server's error message: FastAPI's `detail` (a string or a list of validation errors). */
async function errorMessage(res: Response): Promise<string> {
  try {
    const body: unknown = await res.json();
    if (body && typeof body === 'object' && 'detail' in body) {
      const d = (body as { detail: unknown }).detail;
      if (typeof d === 'string') return d;
      if (Array.isArray(d)) return d.map((e) => (e && typeof e === 'object' && 'msg' in e ? String(e.msg) : String(e))).join('; ');
    }
  } catch {
    /* not JSON */
  }
  return `${res.status} ${res.statusText}`.trim();
}

export class ApiClient {
  private access: string | null = null;
  private refreshing: Promise<boolean> | null = null;
  session: Session | null = null;
  onSessionEnd: (() => void) | null = null;

  constructor(
    private readonly base = '',
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
    private readonly storage: StorageLike | null = typeof sessionStorage === 'undefined' ? null : sessionStorage,
  ) {}

  get accessToken(): string | null {
    return this.access;
  }

  private setTokens(t: TokenPair): void {
    this.access = t.access_token;
    this.session = sessionOf(t.access_token);
    this.storage?.setItem(REFRESH_KEY, t.refresh_token);
  }

  private clear(): void {
    this.access = null;
    this.session = null;
    this.storage?.removeItem(REFRESH_KEY);
  }

  async login(username: string, password: string): Promise<Session> {
    const res = await this.fetchImpl(`${this.base}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!res.ok) throw new ApiError(res.status, res.status === 401 ? 'wrong username or password' : await errorMessage(res));
    this.setTokens((await res.json()) as TokenPair);
    return this.session as Session;
  }

  /** Resume the tab's session from its refresh token (after a reload); null when there is none. */
  async resume(): Promise<Session | null> {
    if (!this.storage?.getItem(REFRESH_KEY)) return null;
    return (await this.refresh()) ? this.session : null;
  }

  /** Rotate the refresh token; false (and the session cleared) when the server refuses it. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const token = this.storage?.getItem(REFRESH_KEY);
    if (!token) return false;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base}/api/token/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      });
    } catch {
      return false; // network down: keep the refresh token, try again later
    }
    if (!res.ok) {
      this.clear();
      this.onSessionEnd?.();
      return false;
    }
    this.setTokens((await res.json()) as TokenPair);
    return true;
  }

  async logout(): Promise<void> {
    const token = this.storage?.getItem(REFRESH_KEY);
    try {
      if (token) {
        await this.fetchImpl(`${this.base}/api/logout`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', ...(this.access ? { Authorization: `Bearer ${this.access}` } : {}) },
          body: JSON.stringify({ refresh_token: token }),
        });
      }
    } finally {
      this.clear();
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const send = () =>
      this.fetchImpl(`${this.base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...(this.access ? { Authorization: `Bearer ${this.access}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    let res = await send();
    if (res.status === 401 && (await this.refresh())) res = await send();
    if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
}

/** A list endpoint's rows, whether it answers a bare array or a page `{items: [...]}`. */
export function rows<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === 'object') {
    for (const k of ['items', 'points']) {
      const v = (body as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}
