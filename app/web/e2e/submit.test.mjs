// Browser end-to-end test of the Submit section: chat votes made through the API against
// an OpenAI-compatible fake, a wallet created in the page (the words shown once, three
// typed back, checked against ethers' own BIP-39/44 derivation), a dry run whose manifest
// the page verifies (and ethers' verifyTypedData too), a real submission queued for
// upload, and its upload on a Greenfield network that cannot be reached (a custom network
// whose RPC is a closed loopback port): the state, the reason, the automatic retries,
// Retry and Share, all followed live through the page's event stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HDNodeWallet, verifyTypedData } from 'ethers';
import { artifacts, launchBrowser, openPage, serve, shot, showSection } from './harness.mjs';
import { openAI } from './llmfakes.mjs';

const KEY = 'sk-e2e-submit-7d6c5b4a3f2e';
const REPLIES = {
  'alpha-large': 'Water boils at one hundred degrees Celsius at sea level.',
  'beta-small': 'At sea level water boils at about one hundred degrees.',
};
const PROMPTS = [
  'At what temperature does water boil at sea level?',
  'Why do mountain climbers find that pasta takes longer to cook?',
];
const READER = '0x9858EfFD232B4033E47d90003D41EC34EcaEda94';
const SECOND_READER = '0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69';
const CHAIN_ID = 'greenfield_9000-121';

let browser;
let dataDir;
let oa;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'gata-submit-e2e-'));
  browser = await launchBrowser();
  oa = await openAI({ key: KEY, replies: REPLIES });
});

after(async () => {
  if (browser) await browser.close();
  if (oa) oa.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// closedPort is a loopback port nothing listens on (it was free a moment ago).
function closedPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// call sends one API request with the key and returns the status and the JSON body.
async function call(server, method, p, body) {
  const res = await fetch(server.base + p.replace(/^\//, ''), {
    method,
    headers: { 'X-API-Key': server.key, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// row is the page's row of the submission with the given id.
const row = (page, id) => page.locator(`[data-testid="submit-row"][data-id="${id}"]`);

test('Submit: a wallet made in the page, chat votes signed and verified, the upload on a network out of reach', async (t) => {
  // No keyring service answers here: the wallet goes to the encrypted keystore file,
  // unlocked in the page; the provider's key comes from the environment.
  const server = await serve(dataDir, { env: { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', GATA_PASSPHRASE: '', GATA_E2E_SUBMIT_KEY: KEY } });
  const { context, page, problems } = await openPage(browser);
  const rpc = `http://127.0.0.1:${await closedPort()}`;
  let address;
  let queued;
  try {
    await t.test('two chat battles are voted through the API against the OpenAI-compatible fake', async () => {
      let r = await call(server, 'POST', '/api/chat/providers', { name: 'oa', kind: 'openai', base_url: oa.url, api_key_env: 'GATA_E2E_SUBMIT_KEY' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      for (const [i, prompt] of PROMPTS.entries()) {
        r = await call(server, 'POST', '/api/chat/battles', { models: ['oa/alpha-large', 'oa/beta-small'], prompt, blind: true });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        const id = r.body.id;
        for (let b = r.body; b.running; b = (await call(server, 'GET', `/api/chat/battles/${id}`)).body) await sleep(50);
        await sleep(1500); // time to read both answers, so the vote counts
        r = await call(server, 'POST', `/api/chat/battles/${id}/vote`, { outcome: i % 2 ? 'B' : 'A' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      assert.equal(oa.requests.length, 4);
      const board = await server.api('/api/chat/leaderboard');
      assert.equal(board.battles, 2);
      assert.equal(board.excluded, 0, 'a vote fell below the quality floor');
    });

    await t.test('the Greenfield network is set to a custom one whose RPC is a closed loopback port', async () => {
      const r = await call(server, 'PATCH', '/api/settings', { 'greenfield.network': 'custom', 'greenfield.chain_id': CHAIN_ID, 'greenfield.rpc': rpc });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    await page.goto(server.login);
    await showSection(page, 'submit');

    await t.test('a wallet is made in the page: the 24 words are shown once and three are typed back', async () => {
      await page.waitForSelector('[data-testid="submit-unlock-form"]');
      await page.fill('[data-testid="submit-unlock-passphrase"]', 'e2e submit passphrase');
      await page.click('[data-testid="submit-unlock"]');
      await page.waitForSelector('[data-testid="submit-unlock-form"]', { state: 'detached' });
      await page.click('[data-testid="submit-new-wallet"]');
      await page.waitForSelector('[data-testid="submit-words"] li');
      const words = await page.locator('[data-testid="submit-words"] li').allInnerTexts();
      assert.equal(words.length, 24);
      address = (await page.innerText('[data-testid="submit-new-words"] p')).match(/0x[0-9a-fA-F]{40}/)[0];
      assert.equal(HDNodeWallet.fromPhrase(words.join(' ')).address, address, 'the words do not give the address shown (m/44\'/60\'/0\'/0/0)');
      const inputs = page.locator('[data-testid="submit-confirm-word"]');
      assert.equal(await inputs.count(), 3);
      for (const input of await inputs.all()) await input.fill(words[Number(await input.getAttribute('name')) - 1]);
      await shot(page, 'submit-01-words');
      await page.click('[data-testid="submit-confirm"]');
      await page.waitForSelector('[data-testid="submit-wallet-address"]');
      assert.equal(await page.innerText('[data-testid="submit-wallet-address"]'), address);
      const html = await page.content();
      assert.ok(!html.includes(words.slice(0, 3).join(' ')) && !html.includes(`<li>${words[0]}</li>`), 'the words stay in the page');
    });

    await t.test('the account card names the network and says why the balance cannot be read', async () => {
      await page.click('[data-testid="submit-account-refresh"]');
      await page.waitForSelector(`[data-testid="submit-account-address"]:text("${address}")`);
      assert.match(await page.innerText('[data-testid="submit-account-network"]'), new RegExp(`custom · ${CHAIN_ID} \\(signed for chain id 9000\\)`));
      assert.equal(await page.innerText('[data-testid="submit-account-rpc"]'), rpc);
      assert.match(await page.innerText('[data-testid="submit-account-bucket"]'), new RegExp(`gata-${address.slice(2).toLowerCase()}`));
      const why = await page.innerText('[data-testid="submit-account-problem"]');
      assert.match(why, /^Balance and read quota cannot be read: connect to Greenfield/);
      assert.ok(why.includes(rpc), `the reason does not name the endpoint: ${why}`);
      await shot(page, 'submit-02-wallet-account');
    });

    let dry;
    await t.test('a dry run writes the two files and the page verifies the manifest', async () => {
      await page.check('[data-testid="submit-dry-run"]');
      const out = path.join(dataDir, 'dry-run');
      await page.fill('[data-testid="submit-out"]', out);
      await page.click('[data-testid="submit-start"]');
      await page.waitForSelector('[data-testid="submit-result"]:has-text("written to")');
      const text = await page.innerText('[data-testid="submit-result"]');
      assert.match(text, new RegExp(`^chat submission of 2 records signed by ${address} \\(nonce 1\\): written to `));
      dry = text.slice(text.indexOf('written to ') + 'written to '.length);
      assert.equal(path.dirname(dry), out);
      await page.fill('[data-testid="submit-verify-manifest"]', dry);
      await page.click('[data-testid="submit-verify"]');
      await page.waitForSelector('[data-testid="submit-verify-result"]:has-text("Signed by")');
      assert.equal(await page.innerText('[data-testid="submit-verify-result"]'), `Signed by ${address}: chat, 2 records, content hash matches.`);
      // An independent check of the same signature: EIP-712 as ethers computes it.
      const m = JSON.parse(readFileSync(dry, 'utf8'));
      assert.equal(m.chain_id, 9000, 'signed for another chain than the custom network');
      const signer = verifyTypedData({ name: 'Gata Submission', version: '1', chainId: m.chain_id },
        { Submission: [{ name: 'kind', type: 'string' }, { name: 'contentHash', type: 'bytes32' }, { name: 'records', type: 'uint64' },
          { name: 'bytes', type: 'uint64' }, { name: 'created', type: 'uint64' }, { name: 'nonce', type: 'uint64' }, { name: 'app', type: 'string' }] },
        { kind: m.kind, contentHash: `0x${m.sha256}`, records: m.records, bytes: m.bytes, created: m.created, nonce: m.nonce, app: m.app }, m.signature);
      assert.equal(signer, address);
      assert.equal(await page.locator('[data-testid="submit-row"]').count(), 0, 'a dry run shows as a submission');
      await shot(page, 'submit-03-dry-run-verified');
    });

    await t.test('a real submission is queued, and its upload fails with the reason and is retried', async () => {
      await page.uncheck('[data-testid="submit-dry-run"]');
      await page.click('[data-testid="submit-start"]');
      await page.waitForSelector('[data-testid="submit-result"]:has-text("queued for upload")');
      assert.match(await page.innerText('[data-testid="submit-result"]'), new RegExp(`signed by ${address} \\(nonce 2\\): queued for upload$`));
      const first = page.locator('[data-testid="submit-row"]').first();
      await first.waitFor();
      queued = await first.getAttribute('data-id');
      const r = row(page, queued);
      assert.match(await r.locator('[data-testid="submit-upload-object"]').innerText(), /^chat\/\d{4}\/\d{2}\/[0-9a-f]{64}\.jsonl/);
      // The uploader takes it, cannot reach the network and says why; the page follows
      // its events without being reloaded.
      await page.waitForSelector(`[data-testid="submit-row"][data-id="${queued}"][data-attempts="1"]`, { timeout: 30_000 });
      assert.equal(await r.locator('[data-testid="submit-upload-state"]').innerText(), 'retrying');
      assert.equal(await r.getAttribute('data-state'), 'queued');
      const err = await r.locator('[data-testid="submit-upload-error"]').innerText();
      assert.match(err, /^connect to Greenfield: connect to Greenfield greenfield_9000-121 at http:\/\/127\.0\.0\.1:\d+: /);
      assert.ok(!err.includes('\n'), 'the error takes more than one line');
      assert.equal(await r.locator('[data-testid="submit-upload-attempts"]').innerText(), '1 failed attempt');
      assert.match(await r.locator('[data-testid="submit-upload-next"]').innerText(), /^next try at \d\d:\d\d:\d\d$/);
      assert.match(await r.locator('[data-testid="submit-upload-bytes"]').innerText(), /^0 B of [\d.]+ K?B \(0 %\)$/);
      assert.equal(await r.locator('[data-testid="submit-retry"]').innerText(), 'Retry now');
      await shot(page, 'submit-04-retrying');
      // The next attempt comes by itself after the backoff.
      await page.waitForSelector(`[data-testid="submit-row"][data-id="${queued}"][data-attempts="2"]`, { timeout: 30_000 });
      assert.equal(await r.locator('[data-testid="submit-upload-attempts"]').innerText(), '2 failed attempts');
    });

    await t.test('Retry answers, and starts the count of attempts again with a new attempt now', async () => {
      const r = row(page, queued);
      await r.locator('[data-testid="submit-retry"]').click();
      await page.waitForSelector('[data-testid="submit-upload-status"]:has-text("queued for an attempt now")');
      assert.equal(await page.innerText('[data-testid="submit-upload-status"]'),
        `Submission ${queued} is queued for an attempt now (the count of attempts starts again).`);
      await page.waitForSelector(`[data-testid="submit-row"][data-id="${queued}"][data-attempts="1"]`);
      assert.match(await r.locator('[data-testid="submit-upload-error"]').innerText(), /^connect to Greenfield/);
      const rows = await server.api('/api/uploads');
      assert.equal(rows.length, 1);
      assert.equal(rows[0].state, 'queued');
      assert.equal(rows[0].attempts, 1);
      await shot(page, 'submit-05-retried');
    });

    await t.test('Share refuses a bad address and records good ones until the upload is done', async () => {
      await page.fill('[data-testid="submit-share-address"]', '0x1234');
      await page.click('[data-testid="submit-share"]');
      await page.waitForSelector('[data-testid="submit-share-error"]:visible');
      assert.match(await page.innerText('[data-testid="submit-share-error"]'), /want 0x and 40 hex digits/);

      await page.fill('[data-testid="submit-share-address"]', READER.toLowerCase());
      await page.selectOption('[data-testid="submit-share-target"]', queued);
      await page.click('[data-testid="submit-share"]');
      await page.waitForSelector('[data-testid="submit-share-result"]:has-text("shared with")');
      assert.equal(await page.innerText('[data-testid="submit-share-result"]'), `Submission ${queued} shared with ${READER}: 1 once its upload is done.`);
      assert.ok(await page.isHidden('[data-testid="submit-share-error"]'), 'the earlier error stays');
      const share = row(page, queued).locator(`[data-testid="submit-share-item"][data-address="${READER}"]`);
      await share.waitFor();
      assert.equal(await share.innerText(), `${READER} granted once the upload is done`);
      assert.equal(await share.getAttribute('data-granted'), 'false');

      await page.fill('[data-testid="submit-share-address"]', SECOND_READER);
      await page.selectOption('[data-testid="submit-share-target"]', '0');
      await page.click('[data-testid="submit-share"]');
      await page.waitForSelector(`[data-testid="submit-share-result"]:has-text("${SECOND_READER}")`);
      assert.equal(await page.innerText('[data-testid="submit-share-result"]'), `1 submission shared with ${SECOND_READER}: 1 once its upload is done.`);
      await row(page, queued).locator(`[data-testid="submit-share-item"][data-address="${SECOND_READER}"]`).waitFor();
      const [up] = await server.api('/api/uploads');
      assert.deepEqual(up.shares.map((s) => [s.address, s.granted]).sort(), [[SECOND_READER, false], [READER, false]].sort());
      await shot(page, 'submit-06-shared');
    });

    await t.test('no page errors but the refused share', () => {
      const expected = problems.filter((p) => /\/api\/uploads\/share: 400$/.test(p) || /status of 400/.test(p));
      assert.deepEqual(problems.filter((p) => !expected.includes(p)), []);
      assert.ok(expected.length >= 1, 'the bad address was not refused by the API');
    });
  } finally {
    await context.close();
    await server.stop();
  }
});
