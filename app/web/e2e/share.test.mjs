// Browser end-to-end test of the Share section: a real `gata pool` over a folder of the
// test images, a `gata worker` on the command line beside it (every group needs two
// workers), and this computer's worker started from the page with its limits: the worker
// card lists them in words, counts its jobs live, and Stop ends it. Then the page of the
// pool's own data folder shows the run verified and both workers' confirmed credit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { artifacts, bin, launchBrowser, openPage, serve, sharedDir, shot, showSection } from './harness.mjs';

const IMAGES = {
  'coffee.jpg': 'a cup of coffee on a saucer, seen from above',
  'chelsea.jpg': 'a tabby cat lying down and looking at the camera',
  'astronaut.jpg': 'an astronaut in a white space suit with a flag behind her',
  'rocket.jpg': 'a rocket lifting off from its launch pad',
  'retina.jpg': 'a photograph of the back of a human eye',
  'chelsea.png': 'a cat with striped fur, close up',
  'camera_gray_224x229.png': 'a black and white photograph of a man with a camera',
};

let browser;
let root;
const procs = [];

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  root = mkdtempSync(path.join(tmpdir(), 'gata-share-e2e-'));
  browser = await launchBrowser();
});

after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (browser) await browser.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

// start runs a gata command and collects its output; lines() waits for a stdout line.
function start(name, args, env = {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  procs.push(proc);
  let stderr = '';
  proc.stderr.on('data', (b) => { stderr += b; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const seen = [];
  const waiters = [];
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    seen.push(line);
    for (const w of waiters) w();
  });
  return {
    proc, exited,
    stderr: () => stderr,
    line: (re, ms = 60_000) => new Promise((resolve, reject) => {
      const check = () => {
        for (const l of seen) {
          const m = l.match(re);
          if (m) { clearTimeout(timer); resolve(m); return true; }
        }
        return false;
      };
      const timer = setTimeout(() => reject(new Error(`${name} printed no line like ${re} in ${ms} ms; stderr:\n${stderr.slice(-3000)}`)), ms);
      if (!check()) waiters.push(check);
      exited.then(({ code }) => { if (!check()) { clearTimeout(timer); reject(new Error(`${name} exited (${code}); stderr:\n${stderr.slice(-3000)}`)); } });
    }),
  };
}

test('Share: this computer joins a pool from the page, within its limits, and is credited', async (t) => {
  const clipDir = path.join(sharedDir(), 'testdata', 'clip');
  const dataset = path.join(root, 'photos');
  mkdirSync(dataset);
  for (const [file, caption] of Object.entries(IMAGES)) {
    copyFileSync(path.join(clipDir, file), path.join(dataset, file));
    writeFileSync(path.join(dataset, file.replace(/\.[a-z]+$/, '.txt')), caption + '\n');
  }
  const poolDir = path.join(root, 'pool');
  const pool = start('gata pool', ['pool', '--data-dir', poolDir, '--dataset', dataset, '--model', clipDir,
    '--listen', '127.0.0.1:0', '--out', path.join(root, 'pool-out'), '--job-size', '2', '--canary-set', '2',
    '--canaries', '1', '--ack-wait', '5s']);
  const [, poolURL] = await pool.line(/^Pool: (\S+)$/);
  const invite = (name) => JSON.parse(execFileSync(bin, ['pool', 'invite', '--data-dir', poolDir, '--name', name,
    '--addr', poolURL, '--json'])).url;

  // No desktop to read, on any machine the test runs on: the limits show, and none pauses.
  const server = await serve(path.join(root, 'worker-data'), { env: { DISPLAY: '', DBUS_SESSION_BUS_ADDRESS: '' } });
  const { context, page, problems } = await openPage(browser);
  try {
    await page.goto(server.login);
    await page.waitForSelector('[data-testid="section-chat"]');
    await showSection(page, 'share');
    assert.equal(await page.innerText('[data-testid="share-idle"]'), 'Not sharing.');

    await t.test('the form starts the worker, whose card lists its limits in words', async () => {
      await page.fill('[data-testid="share-pool"]', invite('browser'));
      await page.fill('[data-testid="share-max-temp"]', '85');
      await page.check('[data-testid="share-while-active"]');
      assert.equal(await page.isChecked('[data-testid="share-fullscreen"]'), false);
      await page.click('[data-testid="share-start"]');
      await page.waitForSelector('[data-testid="share-address"]');
      assert.match(await page.innerText('[data-testid="share-address"]'), /^0x[0-9a-fA-F]{40}$/);
      const limits = await page.locator('[data-testid="share-limits"] li').allInnerTexts();
      assert.deepEqual(limits, [
        'only while no other program uses the GPU, after it was free for 30s',
        'pauses a GPU at 85 °C',
        'not on battery',
        'not while you use the computer, until 3m0s after the last input',
        'not while a fullscreen program is in front',
      ]);
      assert.match(await page.innerText('[data-testid="share-gate"]'), /^working/);
    });

    const address = await page.innerText('[data-testid="share-address"]');
    await t.test('with a second worker the run is done, and the card counted the jobs live', async () => {
      const cli = start('gata worker', ['worker', '--data-dir', path.join(root, 'cli-worker'), '--pool', invite('cli'), '--json']);
      const { code } = await pool.exited;
      assert.equal(code, 0, `gata pool exited with ${code}; stderr:\n${pool.stderr().slice(-3000)}`);
      await page.waitForFunction(() => /^[1-9]\d* \(/.test(document.querySelector('[data-testid="share-jobs"]')?.textContent || ''));
      await shot(page, 'share-01-worker');
      cli.proc.kill('SIGTERM');
      await cli.exited;
    });

    await t.test('Stop ends this computer\'s worker', async () => {
      await page.click('[data-testid="share-stop"]');
      await page.waitForSelector('[data-testid="share-address"]', { state: 'detached' });
      assert.ok(!(await page.isVisible('[data-testid="share-error"]')), 'an error shows after Stop');
    });

    await t.test('the pool\'s own data folder shows the run verified and both workers credited', async () => {
      const owner = await serve(poolDir);
      const op = await openPage(browser);
      try {
        await op.page.goto(owner.login);
        await op.page.waitForSelector('[data-testid="section-chat"]');
        await showSection(op.page, 'share');
        const summary = await op.page.innerText('[data-testid="share-pool-summary"]');
        const m = summary.match(/^Run \d+ \(done\): (\d+) of (\d+) groups verified, 0 jobs waiting for a worker, (\d+) results confirmed, 0 pending, 0 rejected\.$/);
        assert.ok(m, `pool summary: ${summary}`);
        assert.equal(m[1], m[2]);
        assert.ok(Number(m[2]) >= 1, `${m[2]} groups for ${Object.keys(IMAGES).length} pairs`);
        const rows = op.page.locator('[data-testid="share-credits"] tbody tr');
        assert.equal(await rows.count(), 2);
        const row = rows.filter({ hasText: address });
        assert.equal(await row.count(), 1, `no credits row for ${address}`);
        const confirmed = Number((await row.locator('td').nth(1).innerText()).trim());
        assert.ok(confirmed > 0, `the page's worker has ${confirmed} pairs confirmed`);
        await shot(op.page, 'share-02-pool');
        assert.deepEqual(op.problems, []);
      } finally {
        await op.context.close();
        await owner.stop();
      }
    });

    await t.test('no page errors', () => {
      assert.deepEqual(problems, []);
    });
  } finally {
    await context.close();
    await server.stop();
  }
});
