// Browser end-to-end test of the web UI: runs the real `gata serve` on a temporary data
// folder and drives Debian's Chromium through playwright-core (no downloaded browser).
//
//   GATA_BIN=/path/to/gata GATA_ARTIFACTS=/tmp/shots node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.GATA_BIN || path.resolve(here, '../../../bin/gata');
const artifacts = process.env.GATA_ARTIFACTS || path.join(here, 'artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

let browser;
let dataDir;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'gata-web-e2e-'));
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// serve starts `gata serve` and resolves once it prints its login URL.
function serve(dir, { args = ['--addr', '127.0.0.1:0'], env = {} } = {}) {
  const proc = spawn(bin, ['serve', '--data-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  proc.stderr.on('data', (b) => { stderr += b; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gata serve printed no URL in 60 s; stderr:\n${stderr}`)), 60_000);
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = line.match(/^Web UI: (\S+)$/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gata serve exited (${code}) before printing its URL; stderr:\n${stderr}`));
    });
  });
  return url.then((login) => {
    const [base, key] = login.split('#key=');
    assert.match(base, /^https?:\/\/127\.0\.0\.1:\d+\/$/, `login URL ${login}`);
    assert.ok(key && key.length >= 32, `login URL ${login} carries no key`);
    return {
      login, base, key, proc,
      stderr: () => stderr,
      api: async (p, init = {}) => {
        const res = await fetch(base + p.replace(/^\//, ''), { ...init, headers: { 'X-API-Key': key, ...(init.headers || {}) } });
        assert.equal(res.status, 200, `${init.method || 'GET'} ${p}`);
        return res.json();
      },
      stop: async () => {
        proc.kill('SIGTERM');
        const { code, signal } = await exited;
        assert.equal(code, 0, `gata serve exited with ${code} ${signal} after SIGTERM; stderr:\n${stderr}`);
      },
    };
  });
}

// openPage opens a fresh browser context and collects the page's errors (CSP violations
// show up as console errors).
async function openPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  page.setDefaultTimeout(15_000);
  return { context, page, problems };
}

const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

async function showSection(page, id) {
  await page.click(`[data-testid="nav-${id}"]`);
  await page.waitForSelector(`[data-testid="section-${id}"]`);
  assert.equal(new URL(page.url()).hash, `#/${id}`);
}

async function runCheck(page) {
  const jobs = page.locator('[data-testid="job"][data-kind="check"]');
  const before = await jobs.count();
  await page.click('[data-testid="check-start"]');
  // The newest job is listed first; its end arrives by server-sent event.
  await page.waitForFunction((n) => {
    const list = document.querySelectorAll('[data-testid="job"][data-kind="check"]');
    return list.length > n && list[0].dataset.state !== 'running';
  }, before);
  const newest = jobs.first();
  assert.equal(await newest.getAttribute('data-state'), 'done', await newest.innerText());
  const rows = newest.locator('[data-testid="check-item"]');
  const names = await rows.locator('th').allInnerTexts();
  for (const want of ['Data folder', 'Subfolders', 'Free disk space', 'Database integrity', 'Database schema', 'Models folder']) {
    assert.ok(names.includes(want), `check report rows ${names} lack ${want}`);
  }
  const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
  assert.ok(!statuses.includes('fail'), `check report has failures: ${statuses}`);
  return newest;
}

test('web UI end to end', async (t) => {
  let server = await serve(dataDir);
  const sections = await server.api('/api/sections');
  assert.deepEqual(sections.map((s) => s.title), ['Chat', 'Validate', 'Share', 'Submit', 'Settings']);

  await t.test('a page without the key asks to sign in', async () => {
    const { context, page } = await openPage();
    await page.goto(server.base);
    await page.waitForSelector('[data-testid="signin"]:not([hidden])');
    assert.equal(await page.locator('[data-testid="nav-chat"]').count(), 0, 'navigation shown without signing in');
    await shot(page, '00-signin');
    await context.close();
  });

  let { context, page, problems } = await openPage();

  await t.test('the login URL signs in and removes the key', async () => {
    await page.goto(server.login);
    await page.waitForSelector('[data-testid="section-chat"]');
    assert.ok(!page.url().includes('key='), `address bar still holds the key: ${page.url()}`);
    assert.equal(await page.textContent('[data-testid="section-chat"] h1'), 'Chat');
    assert.match(await page.textContent('[data-testid="app-version"]'), /^Version \S+/);
  });

  await t.test('every section shows its title, summary and what is coming', async () => {
    for (const [i, s] of sections.entries()) {
      await showSection(page, s.id);
      const sec = page.locator(`[data-testid="section-${s.id}"]`);
      assert.equal(await sec.locator('h1').innerText(), s.title);
      assert.equal(await sec.locator('[data-testid="section-summary"]').innerText(), s.summary);
      assert.equal(await page.getAttribute(`[data-testid="nav-${s.id}"]`, 'aria-current'), 'page');
      if (s.coming) {
        assert.deepEqual(await sec.locator('[data-testid="coming-list"] li').allInnerTexts(), s.coming);
      }
      await shot(page, `${String(i + 1).padStart(2, '0')}-${s.id}`);
    }
  });

  await t.test('a section is reachable by its URL after a reload', async () => {
    await page.goto(`${server.base}#/validate`);
    await page.reload();
    await page.waitForSelector('[data-testid="section-validate"]');
    assert.equal(await page.textContent('[data-testid="section-validate"] h1'), 'Validate');
  });

  await t.test('a bad value is refused next to its field', async () => {
    await page.goto(`${server.base}#/settings`);
    await page.waitForSelector('[data-testid="settings-form"]');
    const addr = page.locator('[data-testid="setting-web.addr"]');
    const old = await addr.inputValue();
    await addr.fill('nowhere');
    await page.click('[data-testid="settings-save"]');
    const err = page.locator('[data-testid="error-web.addr"]');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.innerText(), /not host:port/);
    assert.equal(await addr.getAttribute('aria-invalid'), 'true');
    await shot(page, '06-settings-error');
    // The refused PATCH is the only failed request so far; the browser logs it as an error.
    assert.deepEqual(problems.filter((p) => !/400/.test(p)), []);
    assert.ok(problems.some((p) => p.startsWith('PATCH ') && p.endsWith(': 400')), `problems: ${problems}`);
    problems.length = 0;
    await addr.fill(old);
    const stored = await server.api('/api/settings');
    assert.equal(stored.find((s) => s.key === 'web.addr').value, old, 'a refused value was stored');
  });

  await t.test('changing the theme and log level saves them', async () => {
    assert.equal(await page.getAttribute('[data-testid="setting-data.dir"]', 'readonly'), '');
    assert.ok((await page.locator('[data-testid="restart-hint"]').count()) >= 1, 'no restart hint');
    await page.selectOption('[data-testid="setting-ui.theme"]', 'dark');
    await page.selectOption('[data-testid="setting-log.level"]', 'debug');
    await page.click('[data-testid="settings-save"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="settings-status"]').textContent.startsWith('Saved'));
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
    assert.equal(await page.locator('[data-testid="error-web.addr"]').isVisible(), false);
    const stored = Object.fromEntries((await server.api('/api/settings')).map((s) => [s.key, s.value]));
    assert.equal(stored['ui.theme'], 'dark');
    assert.equal(stored['log.level'], 'debug');
    await shot(page, '07-settings-dark');
  });

  await t.test('a change made elsewhere shows up live', async () => {
    await server.api('/api/settings', { method: 'PATCH', body: JSON.stringify({ 'share.paused': true }), headers: { 'Content-Type': 'application/json' } });
    await page.waitForFunction(() => document.querySelector('[data-testid="setting-share.paused"]').checked);
    await server.api('/api/settings', { method: 'PATCH', body: JSON.stringify({ 'share.paused': false }), headers: { 'Content-Type': 'application/json' } });
    await page.waitForFunction(() => !document.querySelector('[data-testid="setting-share.paused"]').checked);
  });

  await t.test('the app stops cleanly and keeps the settings', async () => {
    assert.deepEqual(problems, [], 'page errors');
    await context.close();
    await server.stop();
    server = await serve(dataDir);
    ({ context, page, problems } = await openPage());
    await page.goto(server.login);
    await page.waitForSelector('[data-testid="section-chat"]');
    assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
    await showSection(page, 'settings');
    assert.equal(await page.inputValue('[data-testid="setting-ui.theme"]'), 'dark');
    assert.equal(await page.inputValue('[data-testid="setting-log.level"]'), 'debug');
    assert.equal(await page.inputValue('[data-testid="setting-data.dir"]'), (await server.api('/api/info')).data_dir);
  });

  await t.test('the data check runs and shows its report', async () => {
    const job = await runCheck(page);
    assert.equal(await job.locator('[data-testid="job-cancel"]').count(), 0, 'an ended job offers Cancel');
    await shot(page, '08-settings-check-done');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.selectOption('[data-testid="setting-ui.theme"]', 'system');
    await page.click('[data-testid="settings-save"]');
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'system');
    await shot(page, '09-settings-system-dark');
    await page.setViewportSize({ width: 420, height: 860 });
    await shot(page, '10-settings-narrow');
  });

  await t.test('no page errors', () => {
    assert.deepEqual(problems, []);
  });

  await t.test('signing out ends the session', async () => {
    await page.click('[data-testid="sign-out"]');
    await page.waitForSelector('[data-testid="signin"]:not([hidden])');
    await page.goto(`${server.base}#/settings`);
    await page.reload();
    await page.waitForSelector('[data-testid="signin"]:not([hidden])');
    assert.equal(await page.locator('[data-testid="settings-form"]').count(), 0, 'settings shown after signing out');
  });

  await context.close();
  await server.stop();
});

test('password login over TLS on a non-loopback address', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gata-web-e2e-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const server = await serve(path.join(dir, 'data'), {
    args: ['--addr', '0.0.0.0:0', '--tls-cert', cert, '--tls-key', key],
    env: { GATA_WEB_PASSWORD: 'correct horse battery' },
  });
  const { context, page, problems } = await openPage({ ignoreHTTPSErrors: true });
  try {
    assert.ok(server.base.startsWith('https://'), server.base);
    await page.goto(server.base);
    await page.waitForSelector('[data-testid="login-form"]:not([hidden])');
    await page.fill('#login-password', 'wrong');
    await page.click('[data-testid="login-form"] button');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.equal(await page.textContent('#login-error'), 'wrong password');
    await shot(page, '11-login-wrong-password');
    await page.fill('#login-password', 'correct horse battery');
    await page.click('[data-testid="login-form"] button');
    await page.waitForSelector('[data-testid="section-chat"]');
    await showSection(page, 'settings');
    await runCheck(page);
    const cookies = await context.cookies();
    assert.ok(cookies.some((c) => c.name.startsWith('gata_session_') && c.secure && c.httpOnly && c.sameSite === 'Strict'),
      `session cookie ${JSON.stringify(cookies)}`);
    // Only the two refused sign-ins (the first visit and the wrong password) failed.
    assert.deepEqual(problems.filter((p) => !/401/.test(p)), []);
  } finally {
    await context.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
