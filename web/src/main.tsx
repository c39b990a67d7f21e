import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

// Browser errors go to Sentry only when the build was given a DSN (VITE_SENTRY_DSN); otherwise
// the SDK is not even loaded.
const dsn = import.meta.env.VITE_SENTRY_DSN as string | undefined;
if (dsn) {
  void import('@sentry/react').then((Sentry) =>
    Sentry.init({ dsn, environment: import.meta.env.MODE, sendDefaultPii: false }),
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
