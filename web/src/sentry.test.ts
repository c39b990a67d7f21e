import { describe, expect, it, vi } from 'vitest';
import { initSentry } from './sentry';

describe('initSentry', () => {
  it('does not load the SDK without a DSN', async () => {
    const load = vi.fn();
    expect(await initSentry(undefined, 'production', load)).toBe(false);
    expect(await initSentry('', 'production', load)).toBe(false);
    expect(load).not.toHaveBeenCalled();
  });

  it('initialises Sentry with the DSN and without personal data', async () => {
    const init = vi.fn();
    expect(await initSentry('https://k@o1.ingest.example/2', 'production', async () => ({ init }))).toBe(true);
    expect(init).toHaveBeenCalledWith({ dsn: 'https://k@o1.ingest.example/2', environment: 'production', sendDefaultPii: false });
  });
});
