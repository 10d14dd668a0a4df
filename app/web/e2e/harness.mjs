// Shared parts of the browser end-to-end tests: the app binary, the shared reference
// data, `gata serve` on a temporary data folder, and pages of Debian's Chromium driven by
// playwright-core (no downloaded browser).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const bin = process.env.GATA_BIN || path.resolve(here, '../../../bin/gata');
export const artifacts = process.env.GATA_ARTIFACTS || path.join(here, 'artifacts');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// sharedDir finds the shared/ folder as the Go tests do: $GATA_SHARED_DIR, else the first
// "shared" folder with testdata/ beside this folder or one of its parents.
export function sharedDir() {
  if (process.env.GATA_SHARED_DIR) return process.env.GATA_SHARED_DIR;
  for (let dir = here; ; dir = path.dirname(dir)) {
    const cand = path.join(path.dirname(dir), 'shared');
    if (existsSync(path.join(cand, 'testdata'))) return cand;
    if (path.dirname(dir) === dir) throw new Error('shared/ reference data not found beside the checkout (set GATA_SHARED_DIR)');
  }
}

// launchBrowser starts Debian's Chromium headless.
export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
}

// serve starts `gata serve` and resolves once it prints its login URL.
export function serve(dir, { args = ['--addr', '127.0.0.1:0'], env = {} } = {}) {
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
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  page.setDefaultTimeout(15_000);
  return { context, page, problems };
}

export const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

export async function showSection(page, id) {
  await page.click(`[data-testid="nav-${id}"]`);
  await page.waitForSelector(`[data-testid="section-${id}"]`);
  assert.equal(new URL(page.url()).hash, `#/${id}`);
}

