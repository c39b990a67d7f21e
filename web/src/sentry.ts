/** Browser error reporting: Sentry only when the build was given a DSN (`VITE_SENTRY_DSN`);
 * otherwise the SDK is not even downloaded (it is a separate chunk, imported on demand). No
 * personal data: the user name stays out of events. */

export interface SentryLike {
  init(options: { dsn: string; environment: string; sendDefaultPii: boolean; release?: string }): unknown;
}

export async function initSentry(
  dsn: string | undefined,
  environment: string,
  load: () => Promise<SentryLike> = () => import('@sentry/react'),
): Promise<boolean> {
  if (!dsn) return false;
  const Sentry = await load();
  Sentry.init({ dsn, environment, sendDefaultPii: false });
  return true;
}
