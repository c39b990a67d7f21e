// The dashboard end to end, in a real browser: Debian's chromium driven by playwright-core (no
// browser download) against a running `arb demo`. tests/test_dashboard_e2e.py starts the demo,
// creates the viewer and runs this with:
//   E2E_URL, E2E_ADMIN_USER, E2E_ADMIN_PASSWORD, E2E_VIEWER_USER, E2E_VIEWER_PASSWORD,
//   E2E_ARTIFACTS (screenshots), CHROMIUM (default /usr/bin/chromium), E2E_DOCS_SHOT (optional:
//   also save the README's screenshot there).
// Each step prints one line; the first failure exits 1 with what was expected.
import { chromium } from 'playwright-core';
import { mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const URL_ = env('E2E_URL');
const ADMIN = [env('E2E_ADMIN_USER'), env('E2E_ADMIN_PASSWORD')];
const VIEWER = [env('E2E_VIEWER_USER'), env('E2E_VIEWER_PASSWORD')];
const OUT = env('E2E_ARTIFACTS', 'artifacts');
const STEP_MS = 30_000;
mkdirSync(OUT, { recursive: true });

const log = (m) => console.log(`e2e: ${m}`);
const shot = async (page, name, opts = {}) => {
  const path = join(OUT, name);
  await page.screenshot({ path, ...opts });
  log(`screenshot ${path}`);
  return path;
};

async function login(page, [user, password]) {
  await page.goto(URL_);
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: STEP_MS });
}

/** Wait until a row newer than id `than` is on the page (table rows carry their id); the newest id. */
async function waitNewer(page, testid, than) {
  const newest = ([sel, n]) => {
    const ids = [...document.querySelectorAll(sel)].map((e) => Number(e.dataset.id));
    const top = ids.length ? Math.max(...ids) : -1;
    return top > n ? top : false;
  };
  const h = await page.waitForFunction(newest, [`[data-testid="${testid}"]`, than], { timeout: STEP_MS });
  return h.jsonValue();
}

/** The API as a script sees it, called from the page's origin: one login per user, then bearer calls. */
const tokens = new Map();
async function api(page, [user, password], method, path, body) {
  if (!tokens.has(user)) {
    const t = await page.evaluate(async ([username, password]) => {
      const res = await fetch('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }) });
      return (await res.json()).access_token;
    }, [user, password]);
    if (!t) throw new Error(`the API refused ${user}'s login`);
    tokens.set(user, t);
  }
  return page.evaluate(
    async ([token, method, path, body]) => {
      const res = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: await res.json() };
    },
    [tokens.get(user), method, path, body],
  );
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const errors = [];
const pages = [];
const watch = (page, who) => {
  pages.push(page);
  page.on('pageerror', (e) => errors.push(`${who}: ${e}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`e2e: [${who} console] ${m.text()}`));
  page.on('websocket', (ws) => ws.on('close', () => console.log(`e2e: [${who}] stream closed`)));
};
try {
  // -- admin, desktop -----------------------------------------------------------------------
  const admin = await browser.newContext({ viewport: { width: 1360, height: 1000 }, colorScheme: 'dark' });
  const page = await admin.newPage();
  watch(page, 'admin');
  await page.goto(URL_);
  await shot(page, 'login.png');
  await login(page, ADMIN);
  log(`logged in as ${ADMIN[0]} (admin)`);
  await page.getByTestId('stream-status').filter({ hasText: 'live' }).waitFor({ timeout: STEP_MS });
  log('stream live');

  // live: rows keep arriving after the first ones (pushed by the stream, not only loaded)
  const o1 = await waitNewer(page, 'opportunity', -1);
  const t1 = await waitNewer(page, 'trade', -1);
  const o2 = await waitNewer(page, 'opportunity', o1);
  const t2 = await waitNewer(page, 'trade', t1);
  log(`newest opportunity #${o1} -> #${o2}, trade #${t1} -> #${t2}: arriving live`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="spread-now"]')].some((e) => e.textContent !== '-'), null, { timeout: STEP_MS });
  const charts = await page.locator('.spread canvas').count();
  if (charts === 0) throw new Error('no spread chart was drawn');
  log(`spread charts drawn (${await page.locator('.spread').count()} groups)`);
  const venues = await page.getByRole('table', { name: 'venues' }).locator('tbody tr').count();
  if (venues === 0) throw new Error('the venues table is empty');
  await page.waitForTimeout(1500); // let the charts gather a few points for the screenshot
  await shot(page, 'dashboard-admin.png', { fullPage: true });
  if (process.env.E2E_DOCS_SHOT) {
    await page.waitForTimeout(20_000); // a fuller chart for the README
    await shot(page, 'dashboard-docs.png');
    copyFileSync(join(OUT, 'dashboard-docs.png'), process.env.E2E_DOCS_SHOT);
    log(`README screenshot -> ${process.env.E2E_DOCS_SHOT}`);
  }

  // kill switch and resume, as admin
  const risk = page.getByRole('region', { name: 'Risk' });
  await risk.getByRole('button', { name: 'Kill switch' }).click();
  await risk.getByRole('button', { name: 'Confirm kill' }).click();
  await risk.getByTestId('kill-state').filter({ hasText: 'KILLED' }).waitFor({ timeout: STEP_MS });
  const killed = await api(page, ADMIN, 'GET', '/api/risk');
  if (killed.body.killed !== true) throw new Error(`after the kill, /api/risk says killed=${killed.body.killed}`);
  log('kill switch on (the API agrees)');
  await risk.getByRole('list', { name: 'risk events' }).waitFor({ timeout: STEP_MS });
  await shot(page, 'killed.png');
  await risk.getByRole('button', { name: 'Resume trading' }).click();
  await risk.getByTestId('kill-state').filter({ hasText: 'armed' }).waitFor({ timeout: STEP_MS });
  const resumed = await api(page, ADMIN, 'GET', '/api/risk');
  if (resumed.body.killed !== false) throw new Error(`after resume, /api/risk says killed=${resumed.body.killed}`);
  const t3 = await waitNewer(page, 'trade', -1);
  const t4 = await waitNewer(page, 'trade', t3);
  log(`resumed: trades arrive again (#${t4})`);

  // -- viewer, phone width --------------------------------------------------------------------
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const vp = await phone.newPage();
  watch(vp, 'viewer');
  await login(vp, VIEWER);
  await vp.getByText('(viewer)').waitFor();
  const vrisk = vp.getByRole('region', { name: 'Risk' });
  await vrisk.getByText('read-only').waitFor();
  if ((await vrisk.getByRole('button').count()) !== 0) throw new Error('a viewer is offered kill/resume buttons');
  const refused = await api(vp, VIEWER, 'POST', '/api/risk/kill', { reason: 'viewer tries' });
  if (refused.status !== 403) throw new Error(`the API answered a viewer's kill with ${refused.status}, not 403`);
  const still = await api(vp, VIEWER, 'GET', '/api/risk');
  if (still.body.killed !== false) throw new Error("a viewer's kill changed the kill switch");
  log(`viewer: no kill button; the API refuses its kill (403: ${refused.body.detail})`);
  await waitNewer(vp, 'trade', -1);
  const width = await vp.evaluate(() => document.documentElement.scrollWidth);
  if (width > 390) throw new Error(`at phone width the page is ${width}px wide (scrolls sideways)`);
  log('phone width: no sideways scrolling');
  await shot(vp, 'phone-viewer.png', { fullPage: true });
  await vp.getByRole('button', { name: 'Log out' }).click();
  await vp.getByRole('button', { name: 'Log in' }).waitFor();
  log('viewer logged out');

  if (errors.length) throw new Error(`errors in the page: ${errors.join(' | ')}`);
  log('ok');
} catch (e) {
  console.error(`e2e: FAILED: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
  for (const [i, p] of pages.entries()) await shot(p, `failed-${i}.png`, { fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
