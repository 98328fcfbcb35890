// The dashboard in headless Chromium against the fake bridge (no Tauri, no network).
//
// Needs `npm run build` first (it serves `dist/`) and Debian's `chromium` (or CHROMIUM=/path).
// Screenshots of the main states go to ../target/screenshots/ui-*.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
const shots = join(here, '..', '..', 'target', 'screenshots');
/** Fixed port: tests run one at a time and CI machines are fresh. */
const PORT = Number(process.env.UI_TEST_PORT ?? 4179);
const BASE = `http://127.0.0.1:${PORT}`;
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

let server;
let browser;

before(async () => {
  if (!existsSync(join(dist, 'index.html'))) throw new Error('ui/dist is missing: run `npm run build` first');
  mkdirSync(shots, { recursive: true });
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, BASE).pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(PORT, '127.0.0.1', resolve));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

/** Opens the dashboard with a fake-bridge scenario; collects page errors. */
async function open(scenario = 'default', live = false) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${BASE}/?scenario=${scenario}${live ? '&live=1' : ''}`);
  return { page, errors };
}

const state = (page, id) => page.locator(`#${id}`).getAttribute('data-state');
async function waitState(page, id, want) {
  await page.waitForFunction(([i, w]) => document.getElementById(i)?.dataset.state === w, [id, want]);
}

describe('dashboard', () => {
  test('every panel renders with data', async () => {
    const { page, errors } = await open('default', true);
    for (const id of ['control', 'bandwidth', 'pages', 'points', 'validators']) await waitState(page, id, 'ready');
    assert.equal(await page.locator('#state').getAttribute('data-node-state'), 'sharing');
    assert.match(await page.locator('#rate-now').innerText(), /KB\/s/);
    assert.equal(await page.locator('#pages .reasons tbody tr').count(), 4);
    assert.match(await page.locator('#pages').innerText(), /robots_disallowed/);
    assert.match(await page.locator('#pages').innerText(), /Revoked later\s+3/);
    assert.match(await page.locator('#pages-revoked').innerText(), /^3 accepted pages were revoked later/);
    const revoked = page.locator('#pages-revoked-list li');
    assert.equal(await revoked.count(), 2);
    assert.match(
      await revoked.first().innerText(),
      /^https:\/\/news\.example\.org\/2026\/11\/storm-update\s+page not found · epoch 42 · −14 points$/,
    );
    assert.equal(await page.locator('#points-credited').innerText(), '10,930');
    assert.equal(await page.locator('#points-taken-back').innerText(), '23');
    assert.match(
      await page.locator('#validators .claim').innerText(),
      /^Claimable through epoch 41: 9,812 points \(proof checked against the signed root\)$/,
    );
    assert.equal(await page.locator('#points details.epoch').count(), 2);
    assert.equal(await page.locator('#bandwidth canvas').count(), 1, 'throughput chart drawn');
    // Let the live samples draw a curve, and keep the other views out of sight.
    await page.waitForTimeout(4000);
    assert.equal(await page.locator('#view-settings').isVisible(), false);
    await page.screenshot({ path: join(shots, 'ui-overview.png'), fullPage: true });

    await page.click('#nav-activity');
    await waitState(page, 'activity', 'ready');
    assert.equal(await page.locator('#activity-table tbody tr').count(), 25);
    // What a validator made of each page fetched whole; nothing for what was refused.
    const validatorCell = (row) => page.locator(`#activity-table tbody tr:nth-child(${row}) .validator-outcome`).innerText();
    assert.equal(await validatorCell(1), 'Accepted · 12 points');
    assert.equal(await validatorCell(5), 'Revoked: page not found');
    assert.equal(await validatorCell(7), '—');
    await page.screenshot({ path: join(shots, 'ui-activity.png'), fullPage: true });

    await page.click('#nav-settings');
    await waitState(page, 'settings', 'ready');
    await waitState(page, 'key', 'ready');
    await page.screenshot({ path: join(shots, 'ui-settings.png'), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('pushed stats events update the figures and the chart', async () => {
    const { page } = await open();
    await waitState(page, 'bandwidth', 'ready');
    await page.evaluate(async () => {
      const fake = window.__gleanerFake;
      const stats = await fake.stats();
      stats.bandwidth.nowBps = 3 * 1024 * 1024;
      fake.emit({ kind: 'stats', stats });
    });
    assert.equal(await page.locator('#rate-now').innerText(), '3.0 MB/s');
    // A newer epoch whose tree has no leaf for this node: proven by its leaves, or taken on the
    // validator's word.
    for (const [proven, want] of [
      [true, 'Epoch 42: no claim for this node yet (every leaf of the signed root checked).'],
      [false, 'Epoch 42: no claim for this node yet.'],
    ]) {
      await page.evaluate(async (proven) => {
        const fake = window.__gleanerFake;
        const stats = await fake.stats();
        stats.validators[0].claim = { epoch: 42, amount: 0, proven, leaf: false, root: '00'.repeat(32) };
        fake.emit({ kind: 'stats', stats });
      }, proven);
      assert.equal(await page.locator('#validators .claim').innerText(), want);
    }
    await page.close();
  });

  test('Share/Pause toggles and "Pause for 1 hour" shows when it resumes', async () => {
    const { page } = await open();
    await waitState(page, 'control', 'ready');
    await page.click('#pause');
    await page.waitForSelector('#state[data-node-state="paused"]');
    await page.screenshot({ path: join(shots, 'ui-paused.png') });
    await page.click('#resume');
    await page.waitForSelector('#state[data-node-state="sharing"]');
    await page.click('#pause-hour');
    await page.waitForSelector('#state[data-node-state="paused"]');
    assert.match(await page.locator('#control').innerText(), /Resumes by itself at/);
    const calls = await page.evaluate(() => window.__gleanerFake.calls);
    assert.ok(calls.includes('pause') && calls.includes('resume') && calls.includes('pauseFor'));
    await page.close();
  });

  test('capped and offline states explain themselves', async () => {
    for (const scenario of ['capped', 'offline']) {
      const { page } = await open(scenario);
      await page.waitForSelector(`#state[data-node-state="${scenario}"]`);
      await waitState(page, 'validators', 'ready');
      const text = await page.locator('#control').innerText();
      assert.match(text, scenario === 'capped' ? /Monthly cap/ : /No validator answered/);
      assert.match(
        await page.locator('#validators .reach').innerText(),
        scenario === 'capped' ? /^reachable · last answer / : /^unreachable: connection refused · last answer /,
      );
      await page.screenshot({ path: join(shots, `ui-${scenario}.png`) });
      await page.close();
    }
  });

  test("a validator's suspension of the node is shown with its reason", async () => {
    const { page } = await open('suspended');
    await waitState(page, 'validators', 'ready');
    const alert = page.locator('#validators .suspended[role="alert"]');
    assert.match(
      await alert.innerText(),
      /^Suspended by this validator's operator: pages fetched far faster than robots\.txt allows\./,
    );
    assert.equal(await page.locator('#validators .dot.dot-error').count(), 1);
    // Its standing: low credibility, and why pages earn little.
    assert.equal(
      await page.locator('#validators .standing').innerText(),
      "Credibility 0.08 · 2 cross-checks passed, 1 failed. Pages earn little while credibility is low: it grows each time another fetch of a page agrees with this node's.",
    );
    await page.screenshot({ path: join(shots, 'ui-suspended.png') });
    await page.close();
    // No suspension, no line; a trusted node's standing without the hint.
    const plain = await open();
    await waitState(plain.page, 'validators', 'ready');
    assert.equal(await plain.page.locator('#validators .suspended').count(), 0);
    assert.equal(await plain.page.locator('#validators .dot.dot-sharing').count(), 1);
    assert.equal(
      await plain.page.locator('#validators .standing').innerText(),
      'Credibility 0.86 · 57 cross-checks passed, 1 failed.',
    );
    await plain.page.close();
    // No answer from the validator yet, no standing.
    const fresh = await open('empty');
    await waitState(fresh.page, 'validators', 'ready');
    assert.equal(await fresh.page.locator('#validators .standing').count(), 0);
    await fresh.page.close();
  });

  test('settings round-trip through the bridge, and a refusal is shown', async () => {
    const { page } = await open();
    await page.click('#nav-settings');
    await waitState(page, 'settings', 'ready');
    assert.equal(await page.inputValue('#s-rate'), '2048');
    assert.equal(await page.inputValue('#s-monthly'), '20');
    await page.fill('#s-rate', '500');
    await page.fill('#s-monthly', '');
    await page.fill('#s-blocklist', 'facebook.com\nExample.COM\n\n');
    await page.check('#s-schedule-on');
    await page.fill('#s-start', '23:00');
    await page.check('#s-idle');
    await page.uncheck('#s-metered');
    await page.fill('#s-payout', 'PayoutKey111');
    await page.click('#settings-save');
    await page.waitForFunction(() => document.getElementById('settings-msg')?.textContent === 'Saved.');
    const saved = await page.evaluate(() => window.__gleanerFake.settings());
    assert.equal(saved.rateCapBps, 500 * 1024);
    assert.equal(saved.monthlyCapBytes, null);
    assert.deepEqual(saved.blocklist, ['facebook.com', 'example.com']);
    assert.equal(saved.schedule.start, '23:00');
    assert.equal(saved.schedule.end, '07:00');
    assert.equal(typeof saved.schedule.utcOffsetMinutes, 'number');
    assert.equal(saved.idleOnly, true);
    assert.equal(saved.pauseOnMetered, false);
    assert.equal(saved.payoutAddress, 'PayoutKey111');
    // The form shows what the node stored.
    assert.equal(await page.inputValue('#s-blocklist'), 'facebook.com\nexample.com');

    await page.fill('#s-validators', 'ftp://nope');
    await page.click('#settings-save');
    await page.waitForFunction(() => document.getElementById('settings-msg')?.classList.contains('error'));
    assert.match(await page.locator('#settings-msg').innerText(), /must start with https/);

    await page.click('#export-key');
    assert.match(await page.inputValue('#backup-key'), /gleaner-secret-key/);
    await page.close();
  });

  test('the activity log filters by domain, verdict and search, and exports CSV', async () => {
    const { page } = await open();
    await page.click('#nav-activity');
    await waitState(page, 'activity', 'ready');
    assert.match(await page.locator('#activity-count').innerText(), /of 60$/);

    await page.selectOption('#activity-domain', 'docs.python.org');
    await page.waitForFunction(() => document.getElementById('activity-count')?.textContent?.endsWith('of 12'));
    const urls = await page.locator('#activity-table td.url').allInnerTexts();
    assert.ok(urls.every((u) => u.startsWith('https://docs.python.org/')));

    await page.selectOption('#activity-domain', '');
    await page.selectOption('#activity-verdict', 'failed');
    await page.waitForFunction(() => document.getElementById('activity-count')?.textContent?.endsWith('of 8'));
    const verdicts = await page.locator('#activity-table tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.verdict));
    assert.ok(verdicts.length > 0 && verdicts.every((v) => v === 'failed'));

    await page.click('#export-csv');
    await page.waitForFunction(() => document.getElementById('export-msg')?.textContent?.startsWith('Saved'));
    const csv = await page.evaluate(() => window.__gleanerFake.lastExport);
    const lines = csv.split('\n');
    assert.equal(lines[0], 'time,method,url,status,bytes,verdict,reason');
    assert.equal(lines.length, 9);
    assert.ok(lines.slice(1).every((l) => l.includes(',failed,robots_disallowed')));

    await page.fill('#activity-search', 'no-such-page');
    await waitState(page, 'activity', 'empty');
    assert.match(await page.locator('#activity').innerText(), /No request matches/);
    await page.close();
  });

  test('empty state: nothing fetched yet', async () => {
    const { page } = await open('empty');
    await waitState(page, 'pages', 'empty');
    await waitState(page, 'points', 'ready');
    assert.match(await page.locator('#points').innerText(), /No receipts yet/);
    assert.equal(await page.locator('#points-taken-back').count(), 0, 'nothing taken back, no row');
    // Not reached yet this run: neither reachable nor unreachable, with an earlier run's answer.
    assert.match(await page.locator('#validators .reach').innerText(), /^not contacted yet · last answer /);
    assert.equal(await page.locator('#validators .dot-error').count(), 0);
    await page.click('#nav-activity');
    await waitState(page, 'activity', 'empty');
    assert.match(await page.locator('#activity').innerText(), /No requests yet/);
    await page.click('#nav-overview');
    await page.screenshot({ path: join(shots, 'ui-empty.png') });
    await page.close();
  });

  test('loading state: panels say so while the node has not answered', async () => {
    const { page } = await open('loading');
    await page.waitForSelector('#bandwidth');
    for (const id of ['control', 'bandwidth', 'pages', 'points', 'validators']) assert.equal(await state(page, id), 'loading');
    assert.equal(await page.locator('#pages').getAttribute('aria-busy'), 'true');
    await page.click('#nav-settings');
    assert.equal(await state(page, 'settings'), 'loading');
    await page.close();
  });

  test('error state: every panel shows the error and a retry', async () => {
    const { page, errors } = await open('error');
    for (const id of ['control', 'bandwidth', 'pages', 'points', 'validators']) await waitState(page, id, 'error');
    assert.match(await page.locator('#pages [role=alert]').innerText(), /could not be reached/);
    assert.match(await page.locator('#pages').innerText(), /node_unavailable/);
    await page.screenshot({ path: join(shots, 'ui-error.png') });
    await page.click('#nav-activity');
    await waitState(page, 'activity', 'error');
    await page.click('#nav-settings');
    await waitState(page, 'settings', 'error');
    const before = (await page.evaluate(() => window.__gleanerFake.calls)).filter((c) => c === 'settings').length;
    await page.click('#settings button:has-text("Try again")');
    await page.waitForFunction((n) => window.__gleanerFake.calls.filter((c) => c === 'settings').length > n, before);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('first run: the onboarding explains the safety policy and cannot be escaped', async () => {
    const { page } = await open('firstrun');
    await page.waitForSelector('#onboarding[open]');
    const text = await page.locator('#onboarding').innerText();
    for (const words of [/GET requests/, /No cookies/, /private address/, /robots\.txt/, /one page at a time/, /size and time limit/, /No server can override your blocklist/]) {
      assert.match(text, words);
    }
    await page.screenshot({ path: join(shots, 'ui-onboarding.png') });
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#onboarding[open]').count(), 1);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'onboarding-start');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#onboarding', { state: 'detached' });
    assert.ok((await page.evaluate(() => window.__gleanerFake.calls)).includes('completeOnboarding'));
    await page.close();
  });

  test('keyboard only: tab to the controls, focus is visible, Enter acts', async () => {
    const { page } = await open();
    await waitState(page, 'control', 'ready');
    const seen = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      const f = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return { id: el.id, outline: style.outlineStyle, width: style.outlineWidth };
      });
      seen.push(f.id);
      if (f.id) assert.notEqual(f.outline, 'none', `focus ring on #${f.id}`);
      if (f.id === 'pause') break;
    }
    assert.deepEqual(seen.slice(1, 4), ['nav-overview', 'nav-activity', 'nav-settings']);
    assert.equal(seen.at(-1), 'pause');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#state[data-node-state="paused"]');
    // Focus lands on the new main button so the user can undo with Enter again.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'resume');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#state[data-node-state="sharing"]');
    await page.close();
  });
});
