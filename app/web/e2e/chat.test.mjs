// Browser end-to-end test of the Chat section: two providers added in the form (an
// OpenAI-compatible and an Anthropic fake on loopback, their keys kept in the encrypted
// secrets file), a blind three-model battle streaming into three columns, a vote that
// reveals the names and moves the leaderboard, a junk battle voted at once and flagged,
// and the DPO and Arena exports downloaded and read back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { artifacts, launchBrowser, openPage, serve, shot, showSection } from './harness.mjs';
import { anthropic, holdStreams, openAI, pace } from './llmfakes.mjs';

const OPENAI_KEY = 'sk-e2e-openai-5f0c1d2e3b4a';
const ANTHROPIC_KEY = 'sk-ant-e2e-9a8b7c6d5e4f';
const REPLIES = {
  'alpha-large': 'Paris is the capital of France and sits on the river Seine in the north.',
  'beta-small': 'The capital of France is Paris, which is also its largest city by far.',
  'claude-e2e': 'France has Paris as its capital; the city has been the seat of government for centuries.',
};

let browser;
let dataDir;
let oa;
let an;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'gata-chat-e2e-'));
  browser = await launchBrowser();
  oa = await openAI({ key: OPENAI_KEY, replies: { 'alpha-large': REPLIES['alpha-large'], 'beta-small': REPLIES['beta-small'] } });
  an = await anthropic({ key: ANTHROPIC_KEY, replies: { 'claude-e2e': REPLIES['claude-e2e'] } });
});

after(async () => {
  if (browser) await browser.close();
  if (oa) oa.close();
  if (an) an.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function addProvider(page, { name, kind, url, key }) {
  await page.fill('[data-testid="chat-provider-name"]', name);
  await page.selectOption('[data-testid="chat-provider-kind"]', kind);
  await page.fill('[data-testid="chat-provider-url"]', url);
  await page.fill('[data-testid="chat-provider-key"]', key);
  await page.click('[data-testid="chat-provider-add"]');
  await page.waitForSelector(`[data-testid="chat-provider"][data-provider="${name}"] [data-testid="chat-provider-key-stored"]`);
  assert.equal(await page.inputValue('[data-testid="chat-provider-key"]'), '', 'the key stays in the form');
}

// readJSONL reads a downloaded file as JSON lines, the way a trainer's loader does.
function readJSONL(file) {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

test('Chat: a blind three-model battle from adding providers to the exported preferences', async (t) => {
  // No keyring service answers here, so keys go to the encrypted file, unlocked in the page.
  const server = await serve(dataDir, { env: { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', GATA_PASSPHRASE: '' } });
  const { context, page, problems } = await openPage(browser, { acceptDownloads: true });
  try {
    await page.goto(server.login);
    await showSection(page, 'chat');

    await t.test('the secrets file is unlocked with a passphrase, then two providers are added with their keys', async () => {
      await page.waitForSelector('[data-testid="chat-unlock-form"]');
      await page.fill('[data-testid="chat-unlock-passphrase"]', 'e2e passphrase');
      await page.click('[data-testid="chat-unlock"]');
      await page.waitForSelector('[data-testid="chat-unlock-form"]', { state: 'detached' });
      await addProvider(page, { name: 'oa', kind: 'openai', url: oa.url, key: OPENAI_KEY });
      await addProvider(page, { name: 'an', kind: 'anthropic', url: an.url, key: ANTHROPIC_KEY });
      await page.waitForSelector('[data-testid="chat-model"][value="an/claude-e2e"]');
      const offered = await page.locator('[data-testid="chat-model"]').evaluateAll((els) => els.map((e) => e.value).sort());
      assert.deepEqual(offered, ['an/claude-e2e', 'oa/alpha-large', 'oa/beta-small']);
      const html = await page.content();
      assert.ok(!html.includes(OPENAI_KEY) && !html.includes(ANTHROPIC_KEY), 'a key shows in the page');
      const listed = await server.api('/api/chat/providers');
      assert.ok(!JSON.stringify(listed).includes(OPENAI_KEY), 'the API lists a key');
      assert.deepEqual(listed.map((p) => [p.name, p.key_stored]), [['an', true], ['oa', true]]);
      await shot(page, 'chat-01-providers');
    });

    let battle;
    await t.test('three columns stream side by side, blind', async () => {
      pace.delayMs = 60;
      const release = holdStreams(3); // every stream pauses after three words
      for (const m of ['oa/alpha-large', 'oa/beta-small', 'an/claude-e2e']) await page.check(`[data-testid="chat-model"][value="${m}"]`);
      assert.ok(await page.isChecked('[data-testid="chat-blind"]'), 'blind is not the default');
      await page.fill('[data-testid="chat-prompt"]', 'What is the capital of France, and what river runs through it?');
      await page.click('[data-testid="chat-start"]');
      const card = page.locator('[data-testid="chat-battle-card"]');
      await card.waitFor();
      battle = await card.getAttribute('data-battle');
      assert.equal(await page.locator('[data-testid="chat-column"]').count(), 3);
      assert.deepEqual(await page.locator('[data-testid="chat-column-label"]').allInnerTexts(), ['Model A', 'Model B', 'Model C']);
      // Mid-stream: every column shows its first words and no model name.
      await page.waitForFunction(() => {
        const texts = [...document.querySelectorAll('[data-testid="chat-column"] [data-testid="chat-text"]')].map((e) => e.textContent.trim());
        return texts.length === 3 && texts.every((s) => s.split(/\s+/).length === 3);
      });
      assert.equal(await card.getAttribute('data-running'), 'true');
      assert.equal(await page.locator('[data-testid="chat-column-model"]').count(), 0, 'a model name shows before the vote');
      assert.ok(await page.isDisabled('[data-testid="chat-vote-A"]'), 'voting is open while the answers stream');
      await shot(page, 'chat-02-streaming');
      release();
      await page.waitForSelector(`[data-testid="chat-battle-card"][data-battle="${battle}"][data-running="false"]`);
      const texts = (await page.locator('[data-testid="chat-column"] [data-testid="chat-text"]').allInnerTexts()).map((s) => s.trim()).sort();
      assert.deepEqual(texts, Object.values(REPLIES).sort());
      assert.equal(await page.locator('[data-testid="chat-column-model"]').count(), 0, 'a model name shows before the vote');
      assert.equal(oa.requests.length, 2);
      assert.equal(an.requests.length, 1);
      assert.ok(oa.requests.every((r) => r.stream === true) && an.requests[0].stream === true, 'a request did not stream');
    });

    let winner;
    await t.test('the vote reveals the names and moves the leaderboard', async () => {
      await sleep(2500); // the user reads the answers before voting
      await page.click('[data-testid="chat-vote-A"]');
      await page.waitForSelector(`[data-testid="chat-battle-card"][data-battle="${battle}"][data-voted="true"]`);
      const names = await page.locator('[data-testid="chat-column-model"]').allInnerTexts();
      assert.deepEqual([...names].sort(), ['an/claude-e2e', 'oa/alpha-large', 'oa/beta-small']);
      winner = names[0];
      assert.equal(await page.innerText('[data-testid="chat-vote-outcome"]'), 'Model A is better');
      assert.match(await page.innerText('[data-testid="chat-quality"]'), /kept for export and the leaderboard/);
      await page.waitForSelector('[data-testid="chat-rating"]');
      const rows = await page.locator('[data-testid="chat-rating"]').allInnerTexts();
      assert.equal(rows.length, 3, `leaderboard rows: ${rows}`);
      assert.ok(rows[0].includes(winner), `the winner ${winner} is not first: ${rows}`);
      await page.waitForSelector(`[data-testid="chat-history-item"][data-battle="${battle}"] [data-testid="chat-history-vote"]`);
      await shot(page, 'chat-03-voted');
    });

    await t.test('a junk prompt voted at once is flagged with its reasons', async () => {
      pace.delayMs = 0;
      await page.fill('[data-testid="chat-prompt"]', 'asdfasdf asdfasdf asdfasdf qwerqwer');
      await page.click('[data-testid="chat-start"]');
      await page.waitForFunction((old) => {
        const c = document.querySelector('[data-testid="chat-battle-card"]');
        return c && c.dataset.battle !== old && c.dataset.running === 'false';
      }, battle);
      await page.click('[data-testid="chat-vote-B"]');
      await page.waitForSelector('[data-testid="chat-battle-card"][data-voted="true"]');
      assert.match(await page.innerText('[data-testid="chat-quality"]'), /left out of exports and the leaderboard/);
      const reasons = await page.innerText('[data-testid="chat-quality-reasons"]');
      assert.match(reasons, /fast_vote/);
      assert.match(reasons, /spam/);
      const board = await server.api('/api/chat/leaderboard');
      assert.equal(board.battles, 1, 'the junk battle counts on the leaderboard');
      assert.equal(board.excluded, 1);
      await shot(page, 'chat-04-flagged');
    });

    await t.test('the DPO and Arena exports download and load as JSON lines', async () => {
      const download = async (id) => {
        const [d] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid="${id}"]`)]);
        const file = path.join(dataDir, d.suggestedFilename());
        await d.saveAs(file);
        return readJSONL(file);
      };
      const dpo = await download('chat-export-dpo');
      assert.equal(dpo.length, 2, `DPO records: ${JSON.stringify(dpo)}`); // A beat B and C; the junk battle is left out
      for (const r of dpo) {
        assert.deepEqual(r.prompt, [{ role: 'user', content: 'What is the capital of France, and what river runs through it?' }]);
        assert.deepEqual(r.chosen, [{ role: 'assistant', content: REPLIES[winner.split('/')[1]] }]);
        assert.equal(r.rejected.length, 1);
        assert.notEqual(r.rejected[0].content, r.chosen[0].content);
        assert.ok(typeof r.quality === 'number' && r.quality >= 0.5, `quality ${r.quality}`);
      }
      const arena = await download('chat-export-arena');
      assert.equal(arena.length, 3, 'three pairs of one three-model battle');
      for (const r of arena) {
        for (const k of ['question_id', 'model_a', 'model_b', 'winner', 'judge', 'conversation_a', 'conversation_b', 'turn', 'anony', 'language', 'tstamp']) {
          assert.ok(k in r, `arena record lacks ${k}`);
        }
        assert.equal(r.anony, true);
        if (r.model_a === winner) assert.equal(r.winner, 'model_a');
        else if (r.model_b === winner) assert.equal(r.winner, 'model_b');
      }
    });

    await t.test('no page errors, and no key in the data folder', () => {
      assert.deepEqual(problems, []);
      for (const f of ['gata.db', 'secrets.json']) {
        const data = readFileSync(path.join(dataDir, f));
        assert.ok(!data.includes(OPENAI_KEY) && !data.includes(ANTHROPIC_KEY), `${f} holds a key in clear`);
      }
    });
  } finally {
    await context.close();
    await server.stop();
  }
});
