/// <reference types="vitest/config" />
// The dashboard is built into the Python package (src/cryptoarb/api/static), which the API serves:
// no Node at run time. `base: './'` keeps asset URLs relative, so it works wherever it is mounted.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const outDir = fileURLToPath(new URL('../src/cryptoarb/api/static', import.meta.url));

export default defineConfig({
  plugins: [react()],
  base: './',
  // source maps only for a Sentry build (they make its stack traces readable)
  build: { outDir, emptyOutDir: true, sourcemap: Boolean(process.env.VITE_SENTRY_DSN), chunkSizeWarningLimit: 1024 },
  server: {
    // `npm run dev` against a running `arb demo` / `arb api` on the default port
    proxy: { '/api': { target: 'http://127.0.0.1:8000', ws: true } },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test-setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
  },
});
