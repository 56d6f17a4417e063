// shell.test.mjs — the app shell in a real browser: the page loads from
// the binary, the nav is there, /api/meta answers, nothing fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { seedStore, startUi, openBrowser, newPage, screenshot, get } from './harness.mjs';

let db, ui, browser;
before(async () => {
  db = seedStore();
  ui = await startUi(db);
  browser = await openBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (ui) await ui.stop();
});

test('the shell loads with its nav and the store in the header', async () => {
  const page = await newPage(browser);
  await page.goto(ui.url, { waitUntil: 'networkidle0' });
  const nav = await page.$$eval('[data-test="nav"] a', (as) => as.map((a) => a.textContent));
  assert.deepEqual(nav, ['Traces', 'Checklist', 'Evals', 'Compare']);
  await page.waitForFunction(() => document.querySelector('[data-test="meta"]').textContent.includes('traces'));
  const meta = await page.$eval('[data-test="meta"]', (e) => e.textContent);
  assert.ok(meta.includes(db), meta);
  assert.ok(meta.includes('8 traces'), meta);
  await screenshot(page, 'shell');
  assert.deepEqual(page.problems, []);
});

test('/api/meta: version, store, schema, data_version, trace count', async () => {
  const r = await get(ui.base + '/api/meta');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.match(r.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.json.db, db);
  assert.equal(r.json.schema_version, 6);
  assert.equal(r.json.traces, 8);
  assert.equal(typeof r.json.data_version, 'number');
  assert.match(r.json.version, /^\d+\.\d+\.\d+/);
});

test('ms.fmt.usd: dollars never in exponent form, float noise is $0, the sign before the $', async () => {
  const page = await newPage(browser);
  await page.goto(ui.url, { waitUntil: 'networkidle0' });
  const usd = await page.evaluate(() => [1.4e-20, -1.4e-20, 0, 3e-6, 1.4e-7, 0.0046, -0.5, 0.25, 123.456, null]
    .map((x) => ms.fmt.usd(x)));
  assert.deepEqual(usd, ['$0', '$0', '$0', '$0.0000030', '$0.00000014', '$0.0046', '-$0.5000', '$0.2500', '$123.46', '–']);
  assert.deepEqual(page.problems, []);
  await page.close();
});
