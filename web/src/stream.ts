/**
 * The live stream (`/api/stream`, docs/api.md): one WebSocket, authenticated by its first message
 * `{"type": "auth", "token": <access token>}` (a token never goes in the URL, where access logs
 * would keep it), reconnected with capped exponential backoff and jitter so a restarted server
 * is not hit by every dashboard at once. Close code 4401 (token expired or refused) refreshes
 * the token before the retry; 1008 (this client fell behind) and 1013 (too many clients) just
 * retry later.
 */

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface StreamEvent {
  type: string;
  data: Record<string, unknown>;
  /** when the server published it, ns since the epoch */
  ts?: number;
}

export interface StreamOptions {
  /** the ws:// URL of the stream */
  url: string;
  /** a valid access token, or null when there is no session any more */
  token: () => Promise<string | null>;
  onEvent: (e: StreamEvent) => void;
  onStatus?: (s: StreamStatus) => void;
  /** called after an auth refusal (close code 4401); resolves false when the session is over */
  refreshAuth?: () => Promise<boolean>;
  minDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
  WebSocketImpl?: typeof WebSocket;
  setTimer?: (f: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

const AUTH_CLOSE = 4401;

/** Delay before reconnect attempt `n` (0-based): min*2^n capped at max, times a jitter in [0.5, 1). */
export function backoffMs(n: number, min: number, max: number, random: () => number): number {
  return Math.min(max, min * 2 ** n) * (0.5 + random() / 2);
}

/** An event from a frame: `{"kind": ..., "ts": ns, "data": {...}}` (`type` is read as `kind` too). */
export function parseEvent(raw: string): StreamEvent | null {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object') return null;
  const m = msg as Record<string, unknown>;
  const type = typeof m.kind === 'string' ? m.kind : typeof m.type === 'string' ? m.type : null;
  if (!type) return null;
  const data = m.data && typeof m.data === 'object' && !Array.isArray(m.data) ? (m.data as Record<string, unknown>) : m;
  return { type, data, ts: typeof m.ts === 'number' ? m.ts : 0 };
}

export class Stream {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = false;
  private readonly o: Required<Omit<StreamOptions, 'onStatus' | 'refreshAuth'>> & Pick<StreamOptions, 'onStatus' | 'refreshAuth'>;

  constructor(opts: StreamOptions) {
    this.o = {
      minDelayMs: 500,
      maxDelayMs: 15_000,
      random: Math.random,
      WebSocketImpl: globalThis.WebSocket,
      setTimer: (f, ms) => setTimeout(f, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      ...opts,
    };
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, 'bye');
    this.o.onStatus?.('stopped');
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.o.onStatus?.(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const token = await this.o.token();
    if (token === null || this.stopped) {
      if (token === null) this.stop();
      return;
    }
    const ws = new this.o.WebSocketImpl(this.o.url);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (m: MessageEvent) => {
      if (this.ws !== ws || typeof m.data !== 'string') return;
      const e = parseEvent(m.data);
      if (!e) return;
      if (e.type === 'hello') {
        // authenticated: the backoff starts over
        this.attempt = 0;
        this.o.onStatus?.('live');
      }
      this.o.onEvent(e);
    };
    ws.onclose = (c: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      void this.retry(c.code === AUTH_CLOSE);
    };
  }

  private async retry(auth: boolean): Promise<void> {
    if (this.stopped) return;
    if (auth && this.o.refreshAuth && !(await this.o.refreshAuth())) {
      this.stop();
      return;
    }
    this.o.onStatus?.('reconnecting');
    const delay = backoffMs(this.attempt++, this.o.minDelayMs, this.o.maxDelayMs, this.o.random);
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
