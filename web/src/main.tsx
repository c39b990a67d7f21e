import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { initSentry } from './sentry';
import './styles.css';

void initSentry(import.meta.env.VITE_SENTRY_DSN as string | undefined, import.meta.env.MODE);

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
