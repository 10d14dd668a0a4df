// Browser end-to-end test of the web UI: runs the real `gata serve` on a temporary data
// folder and drives Debian's Chromium through playwright-core (no downloaded browser).
//
//   GATA_BIN=/path/to/gata GATA_ARTIFACTS=/tmp/shots node --test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { artifacts, bin, launchBrowser, openPage as openBrowserPage, serve, sharedDir, shot, showSection } from './harness.mjs';

let browser;
let dataDir;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'gata-web-e2e-'));
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const openPage = (options) => openBrowserPage(browser, options);

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

// slowHub stands in for the Hugging Face hub on loopback: it answers every download and
// sends it a little at a time, until the app hangs up.
function slowHub() {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    const chunk = Buffer.alloc(256 << 10);
    const timer = setInterval(() => res.write(chunk), 100);
    res.on('close', () => clearInterval(timer));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

test('Validate: download steps, then score a pair like the command line does', async (t) => {
  const clipDir = path.join(sharedDir(), 'testdata', 'clip');
  const coffee = path.join(clipDir, 'coffee.jpg');
  const caption = 'a cup of coffee on a saucer, seen from above';
  const dir = mkdtempSync(path.join(tmpdir(), 'gata-web-e2e-validate-'));
  const hub = await slowHub();
  const server = await serve(path.join(dir, 'data'), { env: { HF_ENDPOINT: `http://127.0.0.1:${hub.address().port}` } });
  const { context, page, problems } = await openPage();
  try {
    await page.goto(server.login);
    await page.waitForSelector('[data-testid="section-chat"]');
    await showSection(page, 'validate');
    const card = page.locator('[data-testid="model-card"]');

    await t.test('the default model is offered with its licence, then downloads with live progress', async () => {
      const state = await server.api('/api/validate');
      assert.equal(state.ready, false);
      const spec = state.known.spec;
      assert.equal(await card.getAttribute('data-ready'), 'false');
      assert.equal(await card.locator('[data-testid="model-chosen"]').innerText(), `${spec.title} ${spec.name}`);
      assert.equal(await card.locator('[data-testid="model-license"]').getAttribute('href'), spec.license.url);
      assert.ok(await page.locator('[data-testid="model-pull"]').isDisabled(), 'Download is offered before the licence is accepted');
      await shot(page, 'validate-model-missing');

      await page.click('[data-testid="license-accept"]');
      await page.waitForSelector('[data-testid="license-accepted"]');
      assert.ok(await page.locator('[data-testid="model-pull"]').isEnabled());
      await page.click('[data-testid="model-pull"]');
      const job = card.locator('[data-testid="job"][data-kind="model.pull"]');
      await job.waitFor();
      assert.equal(await job.getAttribute('data-state'), 'running');
      const count = job.locator('[data-role="count"]');
      await count.waitFor();
      const first = await count.innerText();
      await page.waitForFunction((f) => {
        const c = document.querySelector('[data-testid="model-card"] [data-kind="model.pull"] [data-role="count"]');
        return c && c.textContent !== f;
      }, first);
      assert.match(await count.innerText(), /^[\d.]+ [KMG]?B of [\d.]+ [KMG]?B$/);
      assert.match(await job.locator('[data-role="percent"]').innerText(), /^\d+ %$/);
      assert.ok(await page.locator('[data-testid="model-pull"]').isDisabled(), 'a second download is offered while one runs');
      await shot(page, 'validate-download');

      await job.locator('[data-testid="job-cancel"]').click();
      await page.waitForSelector('[data-testid="model-card"] [data-kind="model.pull"][data-state="cancelled"]');
      assert.match(await page.locator('[data-testid="model-pull"]').innerText(), /^Resume download/);
    });

    await t.test('a model folder chosen in Settings is ready', async () => {
      await page.click('[data-testid="model-settings-link"]');
      await page.waitForSelector('[data-testid="settings-form"]');
      await page.fill('[data-testid="setting-validate.model"]', clipDir);
      await page.click('[data-testid="settings-save"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="settings-status"]').textContent.startsWith('Saved'));
      await showSection(page, 'validate');
      assert.equal(await card.getAttribute('data-ready'), 'true');
      assert.equal(await card.locator('[data-testid="model-chosen"]').innerText(), clipDir);
    });

    await t.test('scoring shows the score the command line prints', async () => {
      await page.setInputFiles('[data-testid="score-image"]', coffee);
      await page.waitForSelector('[data-testid="score-preview"]:not([hidden])');
      await page.fill('[data-testid="score-caption"]', caption);
      // Hold the request a moment to see the button disabled while it runs.
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      await page.route('**/api/validate/score', async (route) => { await held; await route.continue(); });
      await page.click('[data-testid="score-submit"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="score-submit"]').disabled);
      release();
      await page.waitForSelector('[data-testid="score-result"]:not([hidden])');
      await page.unroute('**/api/validate/score');
      assert.equal(await page.locator('[data-testid="score-submit"]').isDisabled(), false);

      const shown = await page.innerText('[data-testid="result-score"]');
      assert.match(shown, /^-?\d\.\d{3}$/);
      const cli = execFileSync(bin, ['dva', 'score', '--data-dir', path.join(dir, 'cli'), '--model', clipDir, coffee, caption]).toString().trim();
      assert.match(cli, /^-?\d\.\d{4}$/);
      assert.ok(Math.abs(Number(shown) - Number(cli)) <= 0.00055, `the page shows ${shown}, gata dva score prints ${cli}`);
      assert.equal(await page.innerText('[data-testid="result-caption"]'), caption);
      const used = await page.innerText('[data-testid="result-model"]');
      assert.ok(used.startsWith(`coffee.jpg, scored with clip (${clipDir}) on cpu`) && /, 16 dimensions$/.test(used), `model shown as ${used}`);
      assert.ok(await page.locator('#result-image').evaluate((img) => img.complete && img.naturalWidth > 0), 'the result shows no image');
      await page.waitForSelector('[data-testid="model-card"][data-loaded="true"]');
      await shot(page, 'validate');
    });

    await t.test('a file that is not an image is refused in one line', async () => {
      await page.setInputFiles('[data-testid="score-image"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('these are notes, not a picture') });
      await page.click('[data-testid="score-submit"]');
      const err = page.locator('[data-testid="score-error"]');
      await err.waitFor({ state: 'visible' });
      const text = await err.innerText();
      assert.match(text, /notes\.txt/);
      assert.ok(!text.includes('\n'), `error ${JSON.stringify(text)} is more than one line`);
      assert.equal(await page.getAttribute('[data-testid="score-image"]', 'aria-invalid'), 'true');
      await shot(page, 'validate-bad-image');
    });

    await t.test('the screen fits a narrow window', async () => {
      await page.setViewportSize({ width: 420, height: 860 });
      assert.ok(await page.locator('[data-testid="model-card"]').isVisible());
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'the page scrolls sideways');
      await shot(page, 'validate-narrow');
    });

    // Only the refused file failed: its response, and the browser's console line about it.
    const refused = (p) => /^POST \S+\/api\/validate\/score: 400$/.test(p) || /status of 400/.test(p);
    assert.equal(problems.filter(refused).length, 2, `problems: ${problems}`);
    assert.deepEqual(problems.filter((p) => !refused(p)), []);
  } finally {
    await context.close();
    await server.stop();
    await new Promise((resolve) => { hub.closeAllConnections(); hub.close(resolve); });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Validate: a batch run from the form, then its review screen', async (t) => {
  const clipDir = path.join(sharedDir(), 'testdata', 'clip');
  const dir = mkdtempSync(path.join(tmpdir(), 'gata-web-e2e-runs-'));
  const photos = path.join(dir, 'photos');
  const out = path.join(dir, 'out');
  mkdirSync(photos);
  const pairs = [
    ['chelsea.jpg', 'a tabby cat looking up at the camera'],
    ['coffee.jpg', 'a cup of coffee on a saucer, seen from above'],
    ['astronaut.jpg', 'an astronaut in a white suit with a flag'],
    ['rocket.jpg', 'a rocket standing on its launch pad'],
    ['camera_gray_224x229.png', 'a man with a camera on a tripod'],
    ['chelsea.png', 'a cat'],
    ['retina.jpg', 'a photo of the back of an eye'],
    ['coffee.jpg', 'a red sports car on a race track'],
    ['chelsea.jpg', 'a bowl of soup'],
  ];
  pairs.forEach(([file, caption], i) => {
    const name = String(i).padStart(3, '0');
    copyFileSync(path.join(clipDir, file), path.join(photos, name + path.extname(file)));
    writeFileSync(path.join(photos, `${name}.txt`), caption);
  });
  writeFileSync(path.join(photos, 'broken.jpg'), Buffer.from('\xff\xd8\xff\xe0 not really a jpeg', 'latin1'));
  writeFileSync(path.join(photos, 'broken.txt'), 'a broken file');

  const server = await serve(path.join(dir, 'data'));
  const { context, page, problems } = await openPage();
  let run;
  try {
    await server.api('/api/settings', { method: 'PATCH', body: JSON.stringify({ 'validate.model': clipDir }), headers: { 'Content-Type': 'application/json' } });
    await page.goto(server.login);
    await page.waitForSelector('[data-testid="section-chat"]');
    await showSection(page, 'validate');

    await t.test('a run started from the form finishes with its counts', async () => {
      await page.fill('[data-testid="run-sources"]', photos);
      await page.fill('[data-testid="run-out"]', out);
      await page.selectOption('[data-testid="run-keep"]', 'top');
      await page.fill('[data-testid="run-keep-value"]', '50');
      await page.click('[data-testid="run-start"]');
      await page.waitForFunction(() => /^Run \d+ started\.$/.test(document.querySelector('[data-testid="run-status"]').textContent));
      run = Number((await page.textContent('[data-testid="run-status"]')).match(/\d+/)[0]);
      const li = page.locator(`[data-testid="run"][data-run-id="${run}"]`);
      await page.waitForSelector(`[data-testid="run"][data-run-id="${run}"][data-run-state="done"]`, { timeout: 120_000 });
      assert.equal(await li.locator('[data-testid="run-scored"]').innerText(), `${pairs.length} scored`);
      assert.equal(await li.locator('[data-testid="run-failed"]').innerText(), '1 failed');
      assert.match(await li.locator('[data-testid="run-counts"]').innerText(), /\(corrupt 1\)/);
      const s = await server.api(`/api/runs/${run}`);
      assert.equal(s.state, 'done');
      assert.equal(await li.locator('[data-testid="run-kept"]').innerText(), `${s.summary.kept} kept`);
      assert.equal(await li.locator('[data-testid="run-retry"]').count(), 1, 'a run with a failed item offers no retry');
      await shot(page, 'runs');
    });

    const order = (await server.api(`/api/runs/${run}/review?order=score_desc`)).items;
    const pos = () => page.innerText('[data-testid="review-position"]');
    const key = () => page.innerText('[data-testid="review-key"]');

    await t.test('the review screen opens at its own URL and moves with the keyboard', async () => {
      await page.click(`[data-testid="run"][data-run-id="${run}"] [data-testid="run-review"]`);
      await page.waitForSelector('[data-testid="section-review"]');
      assert.equal(new URL(page.url()).hash, `#/validate/review/${run}`);
      await page.waitForFunction(() => document.querySelector('[data-testid="review-position"]').textContent.startsWith('1 of'));
      assert.equal(await pos(), `1 of ${pairs.length}`);
      assert.equal(await key(), order[0].key);
      assert.equal(await page.innerText('[data-testid="review-score"]'), order[0].score.toFixed(4));
      assert.equal(await page.innerText('[data-testid="review-caption"]'), order[0].caption);
      assert.ok(await page.locator('#review-image').evaluate((img) => new Promise((resolve) => {
        if (img.complete) resolve(img.naturalWidth > 0);
        else img.onload = () => resolve(img.naturalWidth > 0);
      })), 'the review shows no image');
      await page.locator('body').focus();
      await page.keyboard.press('ArrowRight');
      assert.equal(await pos(), `2 of ${pairs.length}`);
      await page.keyboard.press('k');
      assert.equal(await key(), order[2].key);
      await page.keyboard.press('j');
      await page.keyboard.press('ArrowLeft');
      assert.equal(await key(), order[0].key);
      assert.match(await page.innerText('[data-testid="shortcuts"]'), /Backspace/);
    });

    await t.test('verdicts given with keys are stored and shown after a reload', async () => {
      await page.keyboard.press('Shift+K');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-verdict"]').textContent === 'keep');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('R');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-verdict"]').textContent === 'reject');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-verdict"]').textContent === 'keep');
      await page.keyboard.press('u');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-verdict"]').textContent === 'none');
      const kept = (await server.api(`/api/runs/${run}/review?verdict=keep`)).items.map((i) => i.key);
      const rejected = (await server.api(`/api/runs/${run}/review?verdict=reject`)).items.map((i) => i.key);
      assert.deepEqual(kept, [order[0].key]);
      assert.deepEqual(rejected, [order[1].key]);

      await page.reload();
      await page.waitForSelector('[data-testid="section-review"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-position"]').textContent.startsWith('1 of'));
      assert.equal(await page.innerText('[data-testid="review-verdict"]'), 'keep');
      await page.locator('body').focus();
      await page.keyboard.press('ArrowRight');
      assert.equal(await page.innerText('[data-testid="review-verdict"]'), 'reject');
      await page.keyboard.press('ArrowLeft');
    });

    await t.test('the failed items are listed with their reason', async () => {
      await page.selectOption('[data-testid="review-show"]', 'failed:corrupt');
      await page.waitForFunction(() => document.querySelector('[data-testid="review-position"]').textContent === '1 of 1');
      assert.equal(await key(), 'broken');
      assert.match(await page.innerText('[data-testid="review-reason"]'), /^corrupt/);
      await page.waitForSelector('[data-testid="review-noimage"]:not([hidden])');
      await page.selectOption('[data-testid="review-show"]', '');
      await page.waitForFunction((n) => document.querySelector('[data-testid="review-position"]').textContent === `1 of ${n}`, pairs.length);
    });

    // readout waits for the kept count of the threshold now shown.
    const readout = async () => {
      await page.waitForFunction(() => {
        const r = document.querySelector('[data-testid="keep-readout"]');
        return r.dataset.pending === 'false' && Number(r.dataset.threshold).toFixed(4) === document.querySelector('[data-testid="threshold-value"]').textContent;
      });
      return page.$eval('[data-testid="keep-readout"]', (r) => ({ kept: Number(r.dataset.kept), threshold: Number(r.dataset.threshold), text: r.textContent }));
    };
    let chosen;

    await t.test('dragging the threshold shows what it keeps, as the API counts it', async () => {
      const first = await readout();
      const s = await server.api(`/api/runs/${run}`);
      assert.equal(first.kept, s.summary.kept, `the screen opens at the run's threshold: ${first.text}`);
      const box = await page.locator('[data-testid="histogram-svg"]').boundingBox();
      const y = box.y + box.height / 2;
      await page.mouse.move(box.x + box.width * 0.5, y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.3, y, { steps: 5 });
      await page.mouse.move(box.x + box.width * 0.05, y, { steps: 5 });
      await page.mouse.up();
      chosen = await readout();
      assert.ok(chosen.kept > first.kept, `dragging left keeps ${chosen.kept}, not more than ${first.kept}`);
      const k = await server.api(`/api/runs/${run}/keep?threshold=${chosen.threshold}`);
      assert.equal(chosen.kept, k.kept);
      assert.equal(chosen.text, `Keeps ${k.kept} of ${k.total} scored pairs: the top ${(100 * k.fraction).toFixed(1)} %.`);
      assert.equal(await page.innerText('[data-testid="threshold-value"]'), chosen.threshold.toFixed(4));
      // The slider moves it with the keyboard too.
      await page.focus('[data-testid="threshold"]');
      await page.keyboard.press('ArrowRight');
      const nudged = await readout();
      assert.ok(nudged.threshold > chosen.threshold, `the arrow key left the threshold at ${nudged.threshold}`);
      chosen = nudged;
      await shot(page, 'review');
    });

    await t.test('applying the threshold exports with it; verdicts win', async () => {
      await page.click('[data-testid="apply-threshold"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="apply-status"]').dataset.kind === 'ok', null, { timeout: 120_000 });
      const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
      assert.ok(Math.abs(summary.min_score - chosen.threshold) < 1e-6, `summary.json min_score ${summary.min_score}, threshold ${chosen.threshold}`);
      const items = (await server.api(`/api/runs/${run}/review?limit=1000`)).items;
      const f32 = Math.fround(chosen.threshold);
      const want = items.filter((i) => (i.verdict === 'keep') || (i.verdict !== 'reject' && i.score >= f32)).length;
      assert.equal(summary.kept, want, `summary.json keeps ${summary.kept}; the threshold and the verdicts keep ${want}`);
      assert.equal(summary.verdict_keep, 1);
      assert.equal(summary.verdict_reject, 1);
      assert.equal(await page.innerText('[data-testid="apply-status"]'), `Exported: ${summary.kept} of ${summary.scored} kept.`);
    });

    await t.test('the review screen fits a narrow window', async () => {
      await page.setViewportSize({ width: 420, height: 860 });
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'the page scrolls sideways');
      await shot(page, 'review-narrow');
    });

    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
