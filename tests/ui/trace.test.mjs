// trace.test.mjs — the trace page (#/trace/ID) and /api/trace, over traces
// recorded by the real binary from tests/ui/trace_pipelines.lua: the
// waterfall's bars against `moonspan show --json` to a pixel, the 20-way
// parallel fan-out drawn overlapping, errors, folds, captured content,
// zoom, collapse, hostile text, and a 20,000-span trace drawn in under a
// second. Screenshots go to tests/out/trace_*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tmpdir, moonspan, bin, root, startUi, openBrowser, newPage, screenshot, get } from './harness.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const PIPELINES = path.join(root, 'tests', 'ui', 'trace_pipelines.lua');
const SHARED_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

let db, ui, browser;
const ids = {};   // pipeline name -> trace id
const shown = {}; // pipeline name -> `moonspan show --json`

function record(which, env) {
  const r = moonspan(['--db', db, 'run', '--quiet', '--capture-content', PIPELINES, which],
    env ? { env: { ...process.env, ...env } } : {});
  assert.equal(r.status, 0, `moonspan run ${which}: ${r.stderr}`);
}

function show(id, extra = []) {
  const r = moonspan(['--db', db, 'show', '--json', ...extra, id], { maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

before(async () => {
  db = path.join(tmpdir('trace'), 'store.db');
  for (const p of ['fanout', 'failing', 'folded', 'content', 'xss', 'big']) record(p);
  const list = JSON.parse(moonspan(['--db', db, 'traces', '--json', '--limit', '100']).stdout);
  for (const t of list) ids[t.name.startsWith('xss') ? 'xss' : t.name] = t.trace_id;
  for (const p of Object.keys(ids)) shown[p] = show(ids[p]);
  // two runs that joined one outer trace: two traces share its id
  const env = { TRACEPARENT: `00-${SHARED_ID}-00f067aa0ba902b7-01` };
  record('failing', env);
  record('folded', env);
  ui = await startUi(db);
  browser = await openBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (ui) await ui.stop();
});

// Depth-first, as the waterfall lists them.
function flat(spans, out = []) {
  for (const s of spans) {
    out.push(s);
    flat(s.children, out);
  }
  return out;
}

// The time range the whole trace covers, ms from its start.
function extent(t) {
  let lo = 0, hi = t.duration_ms;
  for (const s of flat(t.spans)) {
    lo = Math.min(lo, s.offset_ms);
    hi = Math.max(hi, s.offset_ms + s.duration_ms);
  }
  return [lo, hi];
}

async function openTrace(page, id, query = '') {
  await page.goto(`${ui.url}#/trace/${id}${query}`, { waitUntil: 'load' });
  await page.waitForSelector('[data-test="waterfall"] [data-test="wf-row"]');
}

// Every drawn row: its span id, its bar's left and width in px from its
// track's left edge, and the track's width.
function bars(page) {
  return page.$$eval('[data-test="wf-row"]', (rows) => rows.map((r) => {
    const track = r.querySelector('.wf-track').getBoundingClientRect();
    const bar = r.querySelector('[data-test="wf-bar"]').getBoundingClientRect();
    return { id: r.getAttribute('data-span-id'), cls: r.className, left: bar.left - track.left, width: bar.width,
             track: track.width, name: r.querySelector('[data-test="wf-name"]').textContent };
  }));
}

async function viewRange(page) {
  return page.$eval('[data-test="waterfall"]', (w) => [Number(w.getAttribute('data-view-start-ms')),
    Number(w.getAttribute('data-view-end-ms'))]);
}

// Each drawn bar sits where the stored offset and duration put it in
// [a, b], to a pixel (bars reaching outside the range are cut, so only
// those inside it are compared). Returns how many were compared.
function checkBars(drawn, spans, [a, b]) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  let n = 0;
  for (const d of drawn) {
    const s = byId.get(d.id);
    assert.ok(s, `a row for span ${d.id}, which show does not list`);
    if (s.offset_ms < a || s.offset_ms + s.duration_ms > b) continue;
    const scale = d.track / (b - a);
    const left = (s.offset_ms - a) * scale, width = Math.max(1, s.duration_ms * scale);
    assert.ok(Math.abs(d.left - left) <= 1, `${s.name} ${s.span_id}: left ${d.left} px, stored offset gives ${left}`);
    assert.ok(Math.abs(d.width - width) <= 1, `${s.name} ${s.span_id}: width ${d.width} px, stored duration gives ${width}`);
    n++;
  }
  return n;
}

async function clickRow(page, spanId) {
  await page.click(`[data-test="wf-row"][data-span-id="${spanId}"] [data-test="wf-name"]`);
  await page.waitForFunction((n) => {
    const d = document.querySelector('[data-test="detail-field"][data-key="span_id"] td');
    return d && d.textContent === n;
  }, {}, spanId);
}

function detailField(page, key) {
  return page.$eval(`[data-test="detail-field"][data-key="${key}"] td`, (e) => e.textContent);
}

// --- /api/trace -------------------------------------------------------------

test('/api/trace answers what `moonspan show --json` says, with offset_ms on every span', async () => {
  for (const p of ['fanout', 'content', 'folded']) {
    const r = await get(`${ui.base}/api/trace?id=${ids[p]}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.deepEqual(r.json, shown[p]);
  }
  const t = shown.fanout;
  for (const s of flat(t.spans)) {
    // offset_ms is the exact difference of the integer starts
    assert.equal(typeof s.offset_ms, 'number');
    assert.ok(Math.abs(s.offset_ms - (BigInt(s.start_ns) - BigInt(t.start_ns)).toString() / 1e6) < 1e-3);
  }
  // a prefix works as in show
  const r = await get(`${ui.base}/api/trace?id=${ids.fanout.slice(0, 8).toUpperCase()}`);
  assert.equal(r.status, 200);
  assert.equal(r.json.trace_id, ids.fanout);
});

test('/api/trace: bad, unknown and shared ids', async () => {
  const bad = async (q, status, re) => {
    const r = await get(`${ui.base}/api/trace${q}`);
    assert.equal(r.status, status, `${q}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.match(r.json.error, re);
  };
  await bad('', 400, /id is missing: ask \/api\/trace\?id=TRACE_ID/);
  await bad('?id=abc', 400, /4 to 32 hex characters/);
  await bad('?id=xyz%3Cb%3E', 400, /4 to 32 hex characters/);
  await bad(`?id=${'a'.repeat(40)}`, 400, /4 to 32 hex characters/);
  await bad(`?id=${ids.fanout}&pick=0`, 400, /pick must be a whole number from 1/);
  await bad(`?id=${ids.fanout}&pick=x`, 400, /pick must be a whole number from 1/);
  await bad('?id=ffffffff', 404, /no trace with id ffffffff/);
  // two traces share an id: 409 with the list to pick from, then a pick
  let r = await get(`${ui.base}/api/trace?id=${SHARED_ID}`);
  assert.equal(r.status, 409);
  assert.equal(r.json.count, 2);
  assert.match(r.json.error, /2 traces share the id/);
  assert.deepEqual(r.json.matches.map((m) => [m.pick, m.name]), [[1, 'failing'], [2, 'folded']]);
  r = await get(`${ui.base}/api/trace?id=${SHARED_ID}&pick=2`);
  assert.equal(r.status, 200);
  assert.equal(r.json.name, 'folded');
  assert.equal(r.json.pick, 2);
  assert.equal(r.json.matching_traces, 2);
  r = await get(`${ui.base}/api/trace?id=${SHARED_ID}&pick=3`);
  assert.equal(r.status, 404);
  assert.match(r.json.error, /--pick 3: only 2 traces match/);
  r = await get(`${ui.base}/api/trace?id=${ids.fanout}`, {}, 'POST');
  assert.equal(r.status, 405);
});

// --- the waterfall ----------------------------------------------------------------

test('the waterfall draws each span at its stored offset and duration; 20 parallel fetches overlap', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.fanout);
  const t = shown.fanout, spans = flat(t.spans);
  assert.equal(spans.length, 22);
  const range = await viewRange(page);
  assert.deepEqual(range, extent(t));
  const drawn = await bars(page);
  assert.deepEqual(drawn.map((d) => d.id), spans.map((s) => s.span_id)); // depth-first order
  assert.equal(checkBars(drawn, spans, range), 22);
  // the fetches ran at once: every pair of bars overlaps, and each is
  // far wider than a 20th of the track
  const fetches = drawn.filter((d) => d.name === 'fetch');
  assert.equal(fetches.length, 20);
  const lastStart = Math.max(...fetches.map((d) => d.left));
  const firstEnd = Math.min(...fetches.map((d) => d.left + d.width));
  assert.ok(lastStart < firstEnd, `fetch bars overlap: last starts at ${lastStart}, first ends at ${firstEnd}`);
  assert.ok(fetches.every((d) => d.width > d.track / 2), 'each fetch spans most of the trace');
  // nesting: the fetches are indented under the root, past plan's level
  const indent = await page.$$eval('[data-test="wf-row"] .wf-label', (ls) => ls.map((l) => parseFloat(l.style.paddingLeft)));
  assert.ok(indent[1] > indent[0] && indent[2] === indent[1]);
  await screenshot(page, 'trace_fanout');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('zoom: a drag across the axis shows that range, zoom in halves it, reset shows the whole trace', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.fanout);
  const spans = flat(shown.fanout.spans);
  const [a, b] = await viewRange(page);
  const axis = await page.$eval('[data-test="wf-axis"]', (e) => {
    const r = e.getBoundingClientRect();
    return { left: r.left, width: r.width, y: r.top + r.height / 2 };
  });
  // drag from 10% to 30% of the axis
  await page.mouse.move(axis.left + axis.width * 0.1, axis.y);
  await page.mouse.down();
  await page.mouse.move(axis.left + axis.width * 0.2, axis.y, { steps: 4 });
  await page.mouse.move(axis.left + axis.width * 0.3, axis.y, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction((s) => document.querySelector('[data-test="waterfall"]').getAttribute('data-view-start-ms') !== s,
    {}, String(a));
  const [za, zb] = await viewRange(page);
  const span = b - a;
  assert.ok(Math.abs(za - (a + 0.1 * span)) < span * 0.01, `zoom start ${za}`);
  assert.ok(Math.abs(zb - (a + 0.3 * span)) < span * 0.01, `zoom end ${zb}`);
  assert.match(await page.$eval('[data-test="zoom-range"]', (e) => e.textContent), /^showing \+/);
  // bars now follow the new scale: plan (0 to ~5 ms) lies inside [za, zb]? check what lies inside
  checkBars(await bars(page), spans, [za, zb]);
  // the fetches start inside the range and run past it: cut at the right edge
  const drawn = await bars(page);
  const f = drawn.find((d) => d.name === 'fetch');
  assert.ok(f.left + f.width >= f.track - 1, 'a fetch runs past the zoomed range');
  await screenshot(page, 'trace_zoomed');
  await page.click('[data-test="zoom-in"]');
  const [ia, ib] = await viewRange(page);
  assert.ok(Math.abs((ib - ia) - (zb - za) / 2) < 1e-6 * span);
  await page.click('[data-test="zoom-reset"]');
  assert.deepEqual(await viewRange(page), [a, b]);
  assert.equal(checkBars(await bars(page), spans, [a, b]), 22);
  // zoom to one span from its detail panel
  const plan = spans.find((s) => s.name === 'plan');
  await clickRow(page, plan.span_id);
  await page.click('[data-test="zoom-span"]');
  const [pa, pb] = await viewRange(page);
  assert.ok(Math.abs(pa - plan.offset_ms) < 1e-9 && Math.abs(pb - (plan.offset_ms + plan.duration_ms)) < 1e-9);
  const planBar = (await bars(page)).find((d) => d.id === plan.span_id);
  assert.ok(Math.abs(planBar.left) <= 1 && Math.abs(planBar.width - planBar.track) <= 1, 'plan fills the track');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('collapse and expand: a parent hides the spans inside it', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.fanout);
  const rows = () => page.$eval('[data-test="waterfall"]', (w) => Number(w.getAttribute('data-rows')));
  assert.equal(await rows(), 22);
  await page.click('[data-test="wf-row"][data-row="0"] [data-test="wf-toggle"]');
  assert.equal(await rows(), 1);
  assert.equal((await page.$$('[data-test="wf-row"]')).length, 1);
  await page.click('[data-test="wf-row"][data-row="0"] [data-test="wf-toggle"]');
  assert.equal(await rows(), 22);
  // the keys: ↓ selects the next row, ← on the root hides its children, → shows them
  const spans = flat(shown.fanout.spans);
  await clickRow(page, spans[0].span_id);
  await page.keyboard.press('ArrowDown');
  assert.equal(await detailField(page, 'span_id'), spans[1].span_id);
  await page.keyboard.press('ArrowDown');
  assert.equal(await detailField(page, 'span_id'), spans[2].span_id);
  await page.keyboard.press('ArrowLeft'); // a leaf: to its parent
  assert.equal(await detailField(page, 'span_id'), spans[0].span_id);
  await page.keyboard.press('ArrowLeft');
  assert.equal(await rows(), 1);
  await page.keyboard.press('ArrowRight');
  assert.equal(await rows(), 22);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('an error is marked on its span and the request, and the detail shows it with its traceback', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.failing);
  const spans = flat(shown.failing.spans);
  const parse = spans.find((s) => s.name === 'parse');
  assert.equal(parse.error.type, 'ParseError');
  const drawn = await bars(page);
  checkBars(drawn, spans, await viewRange(page));
  const marked = await page.$$eval('[data-test="wf-row"]', (rs) =>
    rs.filter((r) => r.querySelector('[data-test="wf-error"]')).map((r) => r.querySelector('[data-test="wf-name"]').textContent));
  assert.deepEqual(marked, ['failing', 'parse']); // load is ok
  const barColor = await page.$eval(`[data-test="wf-row"][data-span-id="${parse.span_id}"] [data-test="wf-bar"]`,
    (b) => getComputedStyle(b).backgroundColor);
  const okColor = await page.$eval('[data-test="wf-row"][data-row="1"] [data-test="wf-bar"]', (b) => getComputedStyle(b).backgroundColor);
  assert.notEqual(barColor, okColor);
  await clickRow(page, parse.span_id);
  assert.equal(await page.$eval('[data-test="detail-error-type"]', (e) => e.textContent), 'ParseError');
  assert.equal(await page.$eval('[data-test="detail-error-message"]', (e) => e.textContent), 'unexpected token at line 3');
  assert.equal(await page.$eval('[data-test="detail-traceback"]', (e) => e.textContent), parse.error.traceback);
  assert.match(parse.error.traceback, /trace_pipelines\.lua:\d+/);
  assert.equal(await detailField(page, 'status'), 'error');
  assert.doesNotMatch(await page.$eval('[data-test="span-detail"]', (e) => e.textContent), /null|undefined|\[object/);
  await screenshot(page, 'trace_error');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('a fold shows as one row with its count, and its p50, p95 and max in the detail', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.folded);
  const spans = flat(shown.folded.spans);
  const fold = spans.find((s) => s.kind === 'fold');
  assert.equal(fold.fold.count, 1000);
  const row = `[data-test="wf-row"][data-span-id="${fold.span_id}"]`;
  assert.equal(await page.$eval(`${row} [data-test="wf-fold"]`, (e) => e.textContent), '×1,000');
  assert.equal(await page.$eval(row, (e) => e.getAttribute('data-kind')), 'fold');
  checkBars(await bars(page), spans, await viewRange(page));
  await clickRow(page, fold.span_id);
  const fmt = await page.evaluate((f) => [ms.fmt.ms(f.p50_ms), ms.fmt.ms(f.p95_ms), ms.fmt.ms(f.max_ms), ms.fmt.ms(f.total_ms)], fold.fold);
  assert.equal(await detailField(page, 'fold_count'), '1,000');
  assert.equal(await detailField(page, 'fold_p50'), fmt[0]);
  assert.equal(await detailField(page, 'fold_p95'), fmt[1]);
  assert.equal(await detailField(page, 'fold_max'), fmt[2]);
  assert.equal(await detailField(page, 'fold_total'), fmt[3]);
  await screenshot(page, 'trace_fold');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('the detail of an LLM call: tokens, cost, retries, attributes, events and the captured prompt and answer', async () => {
  const page = await newPage(browser);
  await openTrace(page, ids.content);
  const call = flat(shown.content.spans).find((s) => s.kind === 'llm');
  assert.equal(call.input_tokens, 14);
  await clickRow(page, call.span_id);
  assert.equal(await page.$$eval('[data-test="wf-row"] [data-test="wf-ttft"]', (m) => m.length), 1);
  assert.equal(await page.$eval('[data-test="detail-name"]', (e) => e.textContent), 'chat mock');
  assert.equal(await detailField(page, 'input_tokens'), String(call.input_tokens));
  assert.equal(await detailField(page, 'output_tokens'), String(call.output_tokens));
  assert.equal(await detailField(page, 'model'), 'mock');
  const cost = await page.evaluate((c) => ms.fmt.usd(c), call.cost_usd);
  assert.equal(await detailField(page, 'cost'), cost);
  assert.equal(cost, '$0.000024');
  assert.equal(await detailField(page, 'retries'), '1 (succeeded)');
  assert.equal(await detailField(page, 'backoff'), await page.evaluate((x) => ms.fmt.ms(x), call.backoff_ms));
  assert.equal(await detailField(page, 'duration'), await page.evaluate((x) => ms.fmt.ms(x), call.duration_ms));
  const attr = (k) => page.$eval(`[data-test="detail-attr"][data-key="${k}"] td`, (e) => e.textContent);
  assert.equal(await attr('gen_ai.request.model'), 'mock');
  assert.equal(await attr('gen_ai.request.max_tokens'), '50');
  const content = await page.$$eval('[data-test="detail-content"]', (cs) =>
    Object.fromEntries(cs.map((c) => [c.getAttribute('data-key'), c.textContent])));
  assert.match(content['gen_ai.input.messages'], /user.*What is the capital of France\?/s);
  assert.match(content['gen_ai.output.messages'], /assistant.*Paris\./s);
  assert.match(content['gen_ai.system_instructions'], /Be brief\./);
  const events = await page.$$eval('[data-test="detail-event"]', (es) => es.map((e) => e.textContent));
  assert.equal(events.length, 1);
  assert.match(events[0], /attempt_failed.*"status":429/);
  // the event's tick sits at its stored time on the bar's line
  const range = await viewRange(page);
  const tick = await page.$eval(`[data-test="wf-row"][data-span-id="${call.span_id}"]`, (r) => {
    const track = r.querySelector('.wf-track').getBoundingClientRect();
    const m = r.querySelector('[data-test="wf-event"]').getBoundingClientRect();
    return { x: m.left + m.width / 2 - track.left, w: track.width };
  });
  const evAt = (call.events[0].offset_ms - range[0]) * tick.w / (range[1] - range[0]);
  assert.ok(Math.abs(tick.x - evAt) <= 1, `event tick at ${tick.x} px, stored time gives ${evAt}`);
  await screenshot(page, 'trace_llm_detail');

  // a streamed call: time to first token and cache tokens, and its line on the bar
  const streamed = flat(shown.content.spans).find((s) => s.model === 'claude-sonnet-4');
  assert.equal(streamed.ttft_ms, 3);
  await clickRow(page, streamed.span_id);
  assert.equal(await detailField(page, 'ttft'), '3.0 ms');
  assert.equal(await detailField(page, 'cache_read_tokens'), '30');
  assert.equal(await detailField(page, 'cache_write_tokens'), '10');
  assert.equal(await detailField(page, 'cost'), '$0.0123');
  assert.equal(await detailField(page, 'provider'), 'anthropic');
  const line = await page.$eval(`[data-test="wf-row"][data-span-id="${streamed.span_id}"]`, (r) => {
    const track = r.querySelector('.wf-track').getBoundingClientRect();
    const m = r.querySelector('[data-test="wf-ttft"]').getBoundingClientRect();
    return { x: m.left + m.width / 2 - track.left, w: track.width };
  });
  const ttftAt = (streamed.offset_ms + streamed.ttft_ms - range[0]) * line.w / (range[1] - range[0]);
  assert.ok(Math.abs(line.x - ttftAt) <= 1, `first-token line at ${line.x} px, stored TTFT gives ${ttftAt}`);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('hostile text in a name, an attribute, an event and an error shows as text; nothing runs', async () => {
  const page = await newPage(browser);
  await page.evaluateOnNewDocument(() => {
    window.__ran = [];
    window.alert = (m) => window.__ran.push(String(m));
  });
  await openTrace(page, ids.xss);
  const spans = flat(shown.xss.spans);
  const evil = spans.find((s) => s.name === XSS);
  assert.ok(evil);
  assert.equal(await page.$eval('[data-test="trace-name"]', (e) => e.textContent), 'xss ' + XSS);
  await clickRow(page, evil.span_id);
  assert.equal(await page.$eval('[data-test="detail-name"]', (e) => e.textContent), XSS);
  assert.equal(await page.$eval('[data-test="detail-attr"][data-key="note"] td', (e) => e.textContent), XSS);
  assert.match(await page.$eval('[data-test="detail-error-message"]', (e) => e.textContent), /<img src=x onerror=alert\(1\)>$/);
  assert.match(await page.$eval('[data-test="detail-event"]', (e) => e.textContent), /<img src=x onerror=alert\(1\)>/);
  await new Promise((r) => setTimeout(r, 300)); // an onerror would have fired by now
  assert.equal(await page.$$eval('img', (is) => is.length), 0);
  assert.deepEqual(await page.evaluate(() => window.__ran), []);
  await screenshot(page, 'trace_xss');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('two traces sharing an id: the page lists them and a pick opens one', async () => {
  const page = await newPage(browser);
  await page.goto(`${ui.url}#/trace/${SHARED_ID}`, { waitUntil: 'load' });
  await page.waitForSelector('[data-test="trace-matches"]');
  assert.match(await page.$eval('[data-test="trace-error"]', (e) => e.textContent), /2 traces share the id/);
  await page.click('[data-test="trace-matches"] a[href$="pick=2"]');
  await page.waitForSelector('[data-test="waterfall"] [data-test="wf-row"]');
  assert.equal(await page.$eval('[data-test="trace-name"]', (e) => e.textContent), 'folded');
  // the browser logs the 409 it was answered; nothing else may go wrong
  assert.deepEqual(page.problems.filter((p) => !/status of 409 \(Conflict\)/.test(p)), []);
  await page.close();
});

test('a 20,000-span trace draws in under a second, with only the rows in view in the DOM', async () => {
  const page = await newPage(browser);
  const t = shown.big, spans = flat(t.spans);
  assert.equal(spans.length, 20001);
  await page.goto(`${ui.url}#/traces`, { waitUntil: 'load' });
  // from the navigation to the first rows on screen, data fetch included
  const total = await page.evaluate(async (id) => {
    const t0 = performance.now();
    window.location.hash = '#/trace/' + id;
    await new Promise((res) => {
      const tick = () => (document.querySelector('[data-test="waterfall"] [data-test="wf-row"]') ? res() : requestAnimationFrame(tick));
      tick();
    });
    await new Promise((res) => requestAnimationFrame(() => res()));
    return performance.now() - t0;
  }, ids.big);
  const render = await page.$eval('[data-test="waterfall"]', (w) => Number(w.getAttribute('data-render-ms')));
  console.log(`# 20,001-span trace: drawn in ${render.toFixed(1)} ms, ${total.toFixed(0)} ms from navigation (fetch of ${(JSON.stringify(t).length / 1e6).toFixed(1)} MB included)`);
  assert.ok(render <= 1000, `drawing took ${render} ms`);
  assert.ok(total <= 5000, `navigation to rows took ${total} ms`); // the fetch of 6 MB, on a shared machine
  assert.equal(await page.$eval('[data-test="waterfall"]', (w) => Number(w.getAttribute('data-rows'))), 20001);
  const inDom = (await page.$$('[data-test="wf-row"]')).length;
  assert.ok(inDom < 100, `${inDom} rows in the DOM`);
  const range = await viewRange(page);
  checkBars(await bars(page), spans, range);
  // scroll to the end: the last spans come into view, where the store puts them
  await page.$eval('[data-test="wf-scroll"]', (s) => { s.scrollTop = s.scrollHeight; });
  const last = spans[spans.length - 1];
  await page.waitForSelector(`[data-test="wf-row"][data-span-id="${last.span_id}"]`);
  const drawn = await bars(page);
  assert.ok(drawn.length < 100);
  assert.ok(checkBars(drawn, spans, range) > 10);
  // sub-millisecond durations read as moonspan prints them
  const durs = await page.$$eval('[data-test="wf-row"] .wf-dur', (ds) => ds.map((d) => d.textContent));
  assert.ok(durs.every((d) => / (ns|µs|ms)$/.test(d) && !/^0\.000/.test(d)), durs.join(', '));
  assert.deepEqual(await page.evaluate(() => [ms.fmt.ms(0.00015), ms.fmt.ms(0.0031), ms.fmt.ms(0.0125), ms.fmt.ms(0.25)]),
    ['150 ns', '3.10 µs', '12.5 µs', '250 µs']);
  await screenshot(page, 'trace_big_end');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('the page follows a trace while it is written: new spans appear, the status turns ok', async () => {
  const run = spawn(bin, ['--db', db, 'run', '--quiet', PIPELINES, 'growing'], { stdio: 'ignore' });
  const done = new Promise((res) => run.on('exit', (code) => res(code)));
  try {
    // the trace's first part is committed while it is still open
    let id = null;
    for (let i = 0; i < 200 && !id; i++) {
      const t = JSON.parse(moonspan(['--db', db, 'traces', '--json', '--limit', '1', '--name', 'growing']).stdout);
      if (t.length && t[0].status === 'incomplete') id = t[0].trace_id;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(id, 'the open trace was stored in part');
    const page = await newPage(browser);
    await openTrace(page, id);
    const rows = () => page.$eval('[data-test="waterfall"]', (w) => Number(w.getAttribute('data-rows')));
    const first = await rows();
    assert.equal(await page.$eval('[data-test="trace-status"]', (e) => e.textContent), 'incomplete');
    assert.ok(first < 40041, `${first} rows while open`);
    const picked = await page.$eval('[data-test="wf-row"][data-row="1"]', (r) => r.getAttribute('data-span-id'));
    await clickRow(page, picked);
    await page.$eval('[data-test="wf-scroll"]', (e) => { e.scrollTop = 220; });
    assert.equal(await done, 0);
    await page.waitForFunction(() => document.querySelector('[data-test="trace-status"]').textContent === 'ok',
      { timeout: 15000 });
    assert.equal(await rows(), 1 + 40 * 1001);
    // what the user chose stays chosen
    assert.equal(await detailField(page, 'span_id'), picked);
    assert.equal(await page.$eval('[data-test="wf-scroll"]', (e) => e.scrollTop), 220);
    await screenshot(page, 'trace_growing');
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    run.kill();
  }
});

test('a link opened before its trace is stored shows it once stored; a trace that ended is not fetched again', async () => {
  const page = await newPage(browser);
  const later = 'abcdef0123456789abcdef0123456789';
  const asked = [];
  page.on('request', (r) => { if (r.url().includes('/api/trace?')) asked.push(r.url()); });
  await page.goto(`${ui.url}#/trace/${later}`, { waitUntil: 'load' });
  await page.waitForSelector('[data-test="trace-error"]');
  assert.match(await page.$eval('[data-test="trace-error"]', (e) => e.textContent), /no trace with id abcdef/);
  // the message alone, and the way back: no stray "null" beside it
  assert.doesNotMatch(await page.$eval('#page', (e) => e.textContent), /null/);
  assert.equal(await page.$eval('[data-test="trace-back"]', (a) => a.getAttribute('href')), '#/traces');
  // the run joins that trace id from outside, so its trace has that id
  record('fanout', { TRACEPARENT: `00-${later}-00f067aa0ba902b7-01` });
  await page.waitForSelector('[data-test="waterfall"] [data-test="wf-row"]', { timeout: 10000 });
  assert.equal(await page.$eval('[data-test="trace-name"]', (e) => e.textContent), 'fanout');
  const n = asked.length;
  assert.ok(n >= 2);
  // the store changes again: the ended trace is not asked for again
  const meta = await page.evaluate(() => ms.meta.data_version);
  record('failing');
  await page.waitForFunction((v) => ms.meta.data_version !== v, { timeout: 10000 }, meta);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(asked.length, n);
  // 404s are logged by the browser; nothing else may go wrong
  assert.deepEqual(page.problems.filter((p) => !/status of 404 \(Not Found\)/.test(p)), []);
  await page.close();
});
