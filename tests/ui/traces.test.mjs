// traces.test.mjs — the traces page in Chromium against stores seeded by
// real pipelines: the rows, filters, sorting and paging agree with
// `moonspan traces --json` for the same selection; store text is shown
// literally and never runs; the token; live updates; nothing written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  seedStore, startUi, openBrowser, newPage, screenshot, get, tracesJson, gotoTraces, shownTraceIds, runPipeline,
  tmpdir,
} from './harness.mjs';

let db, ui, browser, storeHash;
const digest = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') +
  ':' + fs.statSync(file).mtimeMs;

before(async () => {
  db = seedStore();
  storeHash = digest(db);
  ui = await startUi(db);
  browser = await openBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (ui) await ui.stop();
});

async function openTraces(url, hash = '#/traces') {
  const page = await newPage(browser);
  await page.goto(url + hash, { waitUntil: 'networkidle0' });
  return page;
}

test('lists every trace newest first, with the cells `moonspan traces --json` gives', async () => {
  const cli = tracesJson(db);
  assert.equal(cli.length, 8);
  const page = await openTraces(ui.url);
  assert.deepEqual(await shownTraceIds(page), cli.map((t) => t.trace_id));
  const rows = await page.$$eval('[data-test="trace-row"]', (trs) => trs.map((tr) => {
    const cell = (k) => tr.querySelector(`[data-test="${k}"]`).textContent;
    return { name: cell('trace-link'), href: tr.querySelector('a').getAttribute('href'), status: cell('status'),
      tokens: cell('tokens'), cost: cell('cost'), user: cell('user'), session: cell('session'),
      tags: [...tr.querySelectorAll('[data-test="tags"] .tag')].map((e) => e.textContent), run: cell('run'),
      spans: cell('spans'), duration: cell('duration') };
  }));
  for (let i = 0; i < cli.length; i++) {
    const t = cli[i], r = rows[i];
    assert.equal(r.name, t.name);
    assert.equal(r.href, '#/trace/' + t.trace_id);
    assert.equal(r.status, t.status);
    assert.equal(r.tokens, `${t.input_tokens} / ${t.output_tokens}`);
    assert.equal(r.cost, await page.evaluate((c) => ms.fmt.usd(c), t.cost_usd));
    assert.equal(r.duration, await page.evaluate((d) => ms.fmt.ms(d), t.duration_ms));
    assert.equal(r.user, t.user === null ? '–' : t.user);
    assert.equal(r.session, t.session === null ? '–' : t.session);
    assert.deepEqual(r.tags, t.tags || []);
    assert.equal(r.run, String(t.run_id));
    assert.equal(r.spans, String(t.span_count));
  }
  // the seeded numbers themselves: a trace without llm calls has no cost (not $0)
  const broken = rows.find((r) => r.name === 'broken');
  assert.equal(broken.cost, '–');
  assert.equal(broken.status, 'error');
  assert.ok(rows.filter((r) => r.name === 'answer').every((r) => r.cost.startsWith('$') && r.tokens !== '0 / 0'));
  assert.equal(await page.$eval('[data-test="traces-total"]', (e) => e.textContent), '1–8 of 8');
  await screenshot(page, 'traces');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('each filter returns the rows `moonspan traces` returns for the same selection', async () => {
  const page = await openTraces(ui.url);
  await shownTraceIds(page);
  const cases = [
    ['user=bob', ['--user', 'bob']],
    ['tag=odd', ['--tag', 'odd']],
    ['tag=even&tag=seed', ['--tag', 'even', '--tag', 'seed']],
    ['status=error', ['--errors']],
    ['name=summ*', ['--name', 'summ*']],
    ['attr=topic%3Dbilling', ['--attr', 'topic=billing']],
    ['session=s0', ['--session', 's0']],
    ['user=bob&session=s9', ['--user', 'bob', '--session', 's9']],
    ['since=2020-01-01', ['--since', '2020-01-01']],
    ['run=1', ['--run', '1']],
    ['since=1h&name=answer', ['--since', '1h', '--name', 'answer']],
  ];
  for (const [q, flags] of cases) {
    const want = tracesJson(db, flags).map((t) => t.trace_id);
    assert.ok(want.length > 0 && want.length < 8 || q.startsWith('since') || q === 'run=1', q);
    assert.deepEqual(await gotoTraces(page, '#/traces?' + q), want, q);
  }
  // nothing matches: the note says so
  assert.deepEqual(await gotoTraces(page, '#/traces?until=2020-01-01'), []);
  assert.match(await page.$eval('[data-test="traces-empty"]', (e) => e.textContent), /No traces match/);
  // a bad value: the server's message, shown on the page
  await gotoTraces(page, '#/traces?since=yesterday');
  assert.match(await page.$eval('[data-test="traces-error"]', (e) => e.textContent), /since 'yesterday' is not a duration/);
  assert.deepEqual(page.problems, ['console: Failed to load resource: the server responded with a status of 400 (Bad Request)']);
  page.problems.length = 0; // the browser's own line for that 400

  // the form: type, apply, and the hash carries the filter
  await gotoTraces(page, '#/traces?sort=start');
  await page.type('[data-test="filter-user"]', 'alice');
  await page.type('[data-test="filter-tag"]', 'even, seed');
  await page.select('[data-test="filter-status"]', 'ok');
  await page.evaluate(() => document.querySelector('[data-test="traces"]').setAttribute('data-stale', '1'));
  await page.click('[data-test="filter-apply"]');
  await page.waitForFunction(() => !document.querySelector('[data-test="traces"]').hasAttribute('data-stale'));
  const ids = await shownTraceIds(page);
  const want = tracesJson(db, ['--user', 'alice', '--tag', 'even', '--tag', 'seed']).filter((t) => t.status === 'ok');
  assert.ok(want.length === 3, 'alice has 3 even answers');
  assert.deepEqual(ids, want.map((t) => t.trace_id));
  const hash = await page.evaluate(() => window.location.hash);
  assert.match(hash, /user=alice/);
  assert.match(hash, /tag=even&tag=seed/);
  await screenshot(page, 'traces-filtered');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('sorting by duration and cost orders rows as `moonspan traces --sort` does', async () => {
  const page = await openTraces(ui.url);
  await shownTraceIds(page);
  for (const key of ['duration', 'cost', 'start']) {
    await page.evaluate(() => document.querySelector('[data-test="traces"]').setAttribute('data-stale', '1'));
    await page.click(`[data-test="sort-${key}"]`);
    await page.waitForFunction(() => {
      const b = document.querySelector('[data-test="traces"]');
      return b && !b.hasAttribute('data-stale') && b.querySelector('[data-test="traces-total"]');
    });
    const ids = await shownTraceIds(page);
    assert.deepEqual(ids, tracesJson(db, ['--sort', key]).map((t) => t.trace_id), key);
    assert.ok(await page.$(`[data-test="sort-${key}"].sorted`), key);
  }
  // the costliest first, a trace of unknown cost last
  const costs = tracesJson(db, ['--sort', 'cost']).map((t) => t.cost_usd);
  assert.equal(costs[costs.length - 1], null);
  assert.ok(costs[0] >= costs[1]);
  await page.close();
});

test('pages of 50 follow `moonspan traces` order, with the total', async () => {
  const many = path.join(tmpdir('many'), 'many.db');
  runPipeline(many, 'for i = 1, 120 do trace("bulk" .. (i % 3), {user = "u" .. (i % 4)}, function() end) end\n');
  const cli = tracesJson(many).map((t) => t.trace_id);
  assert.equal(cli.length, 120);
  const other = await startUi(many);
  try {
    const page = await openTraces(other.url);
    assert.deepEqual(await shownTraceIds(page), cli.slice(0, 50));
    assert.equal(await page.$eval('[data-test="traces-total"]', (e) => e.textContent), '1–50 of 120');
    assert.ok(await page.$eval('[data-test="page-prev"]', (b) => b.disabled));
    const next = async (which) => {
      await page.evaluate(() => document.querySelector('[data-test="traces"]').setAttribute('data-stale', '1'));
      await page.click(`[data-test="page-${which}"]`);
      await page.waitForFunction(() => {
        const b = document.querySelector('[data-test="traces"]');
        return b && !b.hasAttribute('data-stale') && b.querySelector('[data-test="traces-total"]');
      });
      return shownTraceIds(page);
    };
    assert.deepEqual(await next('next'), cli.slice(50, 100));
    assert.deepEqual(await next('next'), cli.slice(100, 120));
    assert.equal(await page.$eval('[data-test="traces-total"]', (e) => e.textContent), '101–120 of 120');
    assert.ok(await page.$eval('[data-test="page-next"]', (b) => b.disabled));
    assert.deepEqual(await next('prev'), cli.slice(50, 100));
    // a filter with paging: the total is the filter's
    const u1 = tracesJson(many, ['--user', 'u1']).map((t) => t.trace_id);
    assert.deepEqual(await gotoTraces(page, '#/traces?user=u1'), u1);
    assert.equal(await page.$eval('[data-test="traces-total"]', (e) => e.textContent), `1–${u1.length} of ${u1.length}`);
    await screenshot(page, 'traces-paged');
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    await other.stop();
  }
});

test('store text is shown literally and never runs (names, users, sessions, tags, attributes, errors)', async () => {
  // each payload would count in window.__xss and alert if it ran
  const IMG = '<img src=x onerror="window.__xss=(window.__xss||0)+1;alert(1)">';
  const SCRIPT = '<script>window.__xss=(window.__xss||0)+1;alert(2)</script>';
  const lua = (s) => JSON.stringify(s); // a JSON string is a valid Lua string here (ASCII, no escapes but \")
  const xdb = path.join(tmpdir('xss'), 'xss.db');
  runPipeline(xdb, `
local IMG, SCRIPT = ${lua(IMG)}, ${lua(SCRIPT)}
pcall(trace, IMG, {user = SCRIPT, session = IMG, tags = {IMG, SCRIPT}, note = IMG}, function()
  span(SCRIPT, function() error(IMG) end)
end)
trace(SCRIPT, {user = IMG, note = SCRIPT}, function(ctx) ctx:add_error(SCRIPT) end)
`);
  const cli = tracesJson(xdb);
  assert.deepEqual(cli.map((t) => t.name), [SCRIPT, IMG]);
  const other = await startUi(xdb);
  try {
    const page = await openTraces(other.url);
    assert.deepEqual(await shownTraceIds(page), cli.map((t) => t.trace_id));
    const cells = await page.$$eval('[data-test="trace-row"]', (trs) => trs.map((tr) => ({
      name: tr.querySelector('[data-test="trace-link"]').textContent,
      user: tr.querySelector('[data-test="user"]').textContent,
      session: tr.querySelector('[data-test="session"]').textContent,
      tags: [...tr.querySelectorAll('.tag')].map((e) => e.textContent),
    })));
    assert.deepEqual(cells, [
      { name: SCRIPT, user: IMG, session: '–', tags: [] },
      { name: IMG, user: SCRIPT, session: IMG, tags: [IMG, SCRIPT] },
    ]);
    // an attribute filter with a payload: the field holds it as text, the row is found
    assert.deepEqual(await gotoTraces(page, '#/traces?attr=' + encodeURIComponent('note=' + IMG)), [cli[1].trace_id]);
    assert.equal(await page.$eval('[data-test="filter-attr"]', (e) => e.value), 'note=' + IMG);
    // a payload in a bad parameter comes back in the server's error, as text
    await gotoTraces(page, '#/traces?sort=' + encodeURIComponent(IMG));
    assert.ok((await page.$eval('[data-test="traces-error"]', (e) => e.textContent)).includes(IMG));
    assert.deepEqual(page.problems, ['console: Failed to load resource: the server responded with a status of 400 (Bad Request)']);
    page.problems.length = 0; // the browser's own line for that 400
    // and in a route that does not exist
    await page.evaluate((h) => { window.location.hash = h; }, '#/' + SCRIPT);
    await page.waitForSelector('[data-test="no-page"]');
    assert.ok((await page.$eval('[data-test="no-page"]', (e) => e.textContent)).includes(SCRIPT));
    await gotoTraces(page, '#/traces');
    // nothing was parsed as HTML, nothing ran
    assert.equal(await page.$$eval('#page img, #page script', (es) => es.length), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await screenshot(page, 'traces-xss');
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    await other.stop();
  }
});

test('the filters live in the address: reload, back and forward show the same rows', async () => {
  const page = await openTraces(ui.url);
  const all = await shownTraceIds(page);
  await page.type('[data-test="filter-user"]', 'alice');
  await Promise.all([page.waitForFunction(() => location.hash.includes('user=alice')), page.click('[data-test="filter-apply"]')]);
  const alice = tracesJson(db, ['--user', 'alice']).map((t) => t.trace_id);
  assert.ok(alice.length > 0 && alice.length < all.length);
  const rows = () => page.waitForFunction((want) => {
    const ids = [...document.querySelectorAll('[data-test="trace-row"]')].map((r) => r.getAttribute('data-trace-id'));
    return JSON.stringify(ids) === JSON.stringify(want);
  }, { timeout: 10000 }, alice);
  await rows();
  await page.reload({ waitUntil: 'networkidle0' });
  await rows();
  assert.equal(await page.$eval('[data-test="filter-user"]', (i) => i.value), 'alice');
  await page.goBack();
  await page.waitForFunction((n) => document.querySelectorAll('[data-test="trace-row"]').length === n, { timeout: 10000 }, all.length);
  assert.equal(await page.$eval('[data-test="filter-user"]', (i) => i.value), '');
  await page.goForward();
  await rows();
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('very long store text stays in its column: the list and the trace page are no wider than the window', async () => {
  const LONG = 'very_long_step_name_'.repeat(100);
  const ldb = path.join(tmpdir('long'), 'long.db');
  runPipeline(ldb, `
trace(${JSON.stringify(LONG)}, {user = string.rep("u", 300), session = string.rep("s", 300), tags = {string.rep("t", 200)}},
  function() span("child", function() end) end)`);
  const [t] = tracesJson(ldb);
  const other = await startUi(ldb);
  try {
    const page = await openTraces(other.url);
    await shownTraceIds(page);
    const width = () => page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    let [scroll, inner] = await width();
    assert.ok(scroll <= inner, `the traces page is ${scroll} px wide in a ${inner} px window`);
    // the name is cut to its first lines on screen, whole in its tooltip and text
    const link = await page.$eval('[data-test="trace-link"]', (a) => [a.title, a.textContent, a.getBoundingClientRect().height]);
    assert.equal(link[0], LONG);
    assert.equal(link[1], LONG);
    assert.ok(link[2] < 80, `the name takes ${link[2]} px of height`);
    await screenshot(page, 'traces-long-text');
    await page.evaluate((id) => { window.location.hash = '#/trace/' + id; }, t.trace_id);
    await page.waitForSelector('[data-test="waterfall"] [data-test="wf-row"]');
    [scroll, inner] = await width();
    assert.ok(scroll <= inner, `the trace page is ${scroll} px wide in a ${inner} px window`);
    // the status badge keeps its word on one line
    const badge = await page.$eval('[data-test="trace-status"]', (e) => e.getBoundingClientRect().height);
    assert.ok(badge < 30, `the status badge is ${badge} px high`);
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    await other.stop();
  }
});

test('with --token: the page opened with ?token= works; without it, 401', async () => {
  const token = 'tok-' + crypto.randomBytes(9).toString('hex');
  const guarded = await startUi(db, { token });
  try {
    assert.equal(guarded.url, `${guarded.base}/?token=${token}`);
    const page = await newPage(browser);
    const resp = await page.goto(guarded.base + '/#/traces', { waitUntil: 'networkidle0' });
    assert.equal(resp.status(), 401);
    assert.match(await page.evaluate(() => document.body.textContent), /needs its token/);
    page.problems.length = 0; // the browser logs the 401 itself
    await page.goto(guarded.url + '#/traces', { waitUntil: 'networkidle0' });
    assert.deepEqual(await shownTraceIds(page), tracesJson(db).map((t) => t.trace_id));
    await page.waitForFunction(() => document.querySelector('[data-test="meta"]').textContent.includes('8 traces'));
    assert.deepEqual(page.problems, []);
    await page.close();
    assert.equal((await get(guarded.base + '/api/traces')).status, 401);
    assert.equal((await get(guarded.base + '/api/traces', { Authorization: 'Bearer ' + token })).status, 200);
    assert.equal((await get(guarded.base + '/api/traces?token=' + token)).status, 200);
    assert.equal((await get(guarded.base + '/ui/app.js')).status, 401);
  } finally {
    await guarded.stop();
  }
});

test('a trace written while the page is open shows up without a reload', async () => {
  const live = path.join(tmpdir('live'), 'live.db');
  runPipeline(live, 'trace("first", function() end)\n');
  const other = await startUi(live);
  try {
    const page = await openTraces(other.url);
    assert.equal((await shownTraceIds(page)).length, 1);
    await page.evaluate(() => { window.__sameDocument = true; });
    runPipeline(live, 'trace("written_later", {user = "late"}, function() span("s", function() end) end)\n', 'later.lua');
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-test="trace-link"]')].some((a) => a.textContent === 'written_later'),
      { timeout: 10000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true);
    assert.deepEqual(await shownTraceIds(page), tracesJson(live).map((t) => t.trace_id));
    await page.waitForFunction(() => document.querySelector('[data-test="meta"]').textContent.includes('2 traces'));
    await screenshot(page, 'traces-live');
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    await other.stop();
  }
});

test('the browser sessions left the store as it was', async () => {
  assert.equal(digest(db), storeHash);
});
