// charts.test.mjs — the checklist, eval and compare pages in a real
// browser, against a store seeded by real pipelines and real eval runs
// (a baseline pair where one case regresses). Every number the pages
// show is checked against the CLI's answer for the same selection:
// `moonspan report --json`, `diff --json`, `runs --json`, and the eval
// run's own summary on stdout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { seedStore, runPipeline, startUi, openBrowser, newPage, screenshot, get, moonspan, tmpdir } from './harness.mjs';

const XSS = '<img src=x onerror=alert(1)>';

// A suite whose case "b" regresses when REGRESS=1: the mock answers it wrongly.
const SUITE = `
local regress = os.getenv("REGRESS") == "1"
return suite "regress-demo" {
  dataset = {{id = "a", input = "first"}, {id = "b", input = "second"}, {id = "c", input = "third"},
             {id = ${JSON.stringify(XSS)}, input = "fourth"}},
  run = function(case)
    local wrong = regress and case.id == "b"
    return llm.call{model = "mock", messages = {{role = "user", content = case.input}},
                    mock = {reply = wrong and "nope" or "right answer", latency_ms = 2}}.text
  end,
  scorers = { contains("right") },
  threshold = 0,
}`;

let db, dir, ui, browser, evalOut, evalIds;

function cli(args, env) {
  const r = moonspan(['--db', db, ...args], env ? { env: { ...process.env, ...env } } : {});
  if (r.status !== 0 && r.status !== 1) throw new Error(`moonspan ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}
const cliJson = (args) => JSON.parse(cli(args).stdout);

before(async () => {
  db = seedStore();
  dir = path.dirname(db);
  // a second run of the same shape, so two runs can be compared; and hostile names
  runPipeline(db, fs.readFileSync(new URL('./seed.lua', import.meta.url), 'utf8'), 'seed2.lua');
  runPipeline(db, `trace(${JSON.stringify(XSS)}, function() span(${JSON.stringify(XSS)}, function() moonspan.sleep_ms(1) end) end)
    pcall(trace, "hostile_error", function() error(${JSON.stringify(XSS)}) end)`, 'hostile.lua');
  const suite = path.join(dir, 'regress_suite.lua');
  fs.writeFileSync(suite, SUITE);
  cli(['eval', suite], { REGRESS: '0' });
  evalOut = cli(['eval', '--baseline', 'last', suite], { REGRESS: '1' }).stdout;
  const runs = cliJson(['runs', '--json', '--limit', '100']);
  evalIds = runs.flatMap((r) => r.eval_runs).map((e) => e.id).sort((x, y) => x - y);
  assert.equal(evalIds.length, 2);
  ui = await startUi(db);
  browser = await openBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (ui) await ui.stop();
});

async function open(hash, ready) {
  const page = await newPage(browser);
  await page.goto(ui.url + hash, { waitUntil: 'networkidle0' });
  await page.waitForSelector(`[data-test="${ready}"]`, { timeout: 10000 });
  return page;
}
const kpi = (page, name) => page.$eval(`[data-test="kpi-${name}"]`, (e) => e.getAttribute('data-value'));
const num = (s) => (s === '' || s === null ? null : Number(s));

test('checklist: the headline numbers are report --json\'s, for all traces and for one name', async () => {
  const page = await open('#/report', 'report-loaded');
  const r = cliJson(['report', '--json']);
  assert.equal(num(await kpi(page, 'requests')), r.requests.count);
  assert.equal(num(await kpi(page, 'p50')), r.requests.latency_ms.p50);
  assert.equal(num(await kpi(page, 'p95')), r.requests.latency_ms.p95);
  assert.equal(num(await kpi(page, 'p99')), r.requests.latency_ms.p99);
  assert.equal(num(await kpi(page, 'error-rate')), r.errors.rate);
  assert.equal(num(await kpi(page, 'cost')), r.cost.avg_usd_per_request);
  assert.ok(r.errors.rate > 0 && r.cost.avg_usd_per_request > 0, 'the seed has errors and costs');
  // the slowest-steps bars are the report's step p95s
  const bars = await page.$$eval('[data-test="chart-slowest"] g.bar', (gs) => gs.map((g) => [g.getAttribute('data-label'), Number(g.getAttribute('data-value'))]));
  assert.ok(bars.length >= 3);
  for (const [label, v] of bars) {
    const st = r.steps.find((s) => s.path.join('/') === label);
    assert.ok(st, `step ${label} in the report`);
    assert.equal(v, st.p95_ms, label);
  }
  // the top errors table
  const errs = await page.$$eval('[data-test="error-row"] td', (tds) => tds.map((t) => t.textContent));
  assert.equal(errs[1], r.errors.top[0].message);

  // filtering by name through the form: the numbers become `report --name answer`'s
  await page.type('[data-test="filter-name"]', 'answer');
  await Promise.all([page.waitForFunction(() => location.hash.includes('name=answer')), page.click('[data-test="filter-apply"]')]);
  await page.waitForFunction(() => document.querySelector('[data-test="report-window"]')?.textContent.includes("name 'answer'"));
  const rn = cliJson(['report', '--json', '--name', 'answer']);
  assert.equal(num(await kpi(page, 'requests')), rn.requests.count);
  assert.equal(num(await kpi(page, 'p95')), rn.requests.latency_ms.p95);
  assert.equal(num(await kpi(page, 'cost')), rn.cost.avg_usd_per_request);
  assert.equal(num(await kpi(page, 'error-rate')), 0);
  assert.notEqual(rn.requests.latency_ms.p95, r.requests.latency_ms.p95);
  await screenshot(page, 'charts-report-answer');
  assert.deepEqual(page.problems, []);
});

test('checklist: tags comma-separated as on the traces page; the filters stay through reload and back', async () => {
  const page = await open('#/report', 'report-loaded');
  const all = num(await kpi(page, 'requests'));
  await page.type('[data-test="filter-tag"]', 'even, seed');
  await Promise.all([page.waitForFunction(() => location.hash.includes('tag=even&tag=seed')), page.click('[data-test="filter-apply"]')]);
  const want = cliJson(['report', '--json', '--tag', 'even', '--tag', 'seed']).requests.count;
  assert.ok(want > 0 && want < all, 'the seed has requests with and without both tags');
  const shows = (n) => page.waitForFunction((c) => Number(document.querySelector('[data-test="kpi-requests"]')?.getAttribute('data-value')) === c, { timeout: 10000 }, n);
  await shows(want);
  await page.reload({ waitUntil: 'networkidle0' });
  await shows(want);
  assert.equal(await page.$eval('[data-test="filter-tag"]', (i) => i.value), 'even, seed');
  await page.goBack();
  await shows(all);
  assert.equal(await page.$eval('[data-test="filter-tag"]', (i) => i.value), '');
  await page.goForward();
  await shows(want);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('checklist: an eval run\'s traces (the eval page links here) stay chosen when another filter is applied', async () => {
  const id = evalIds[1];
  const page = await open(`#/report?eval_run=${id}`, 'report-loaded');
  assert.equal(await page.$eval('[data-test="filter-eval_run"]', (i) => i.value), String(id));
  const want = cliJson(['report', '--json', '--eval-run', String(id)]).requests.count;
  assert.equal(num(await kpi(page, 'requests')), want);
  await page.type('[data-test="filter-since"]', '7d');
  await Promise.all([page.waitForFunction(() => location.hash.includes('since=7d')), page.click('[data-test="filter-apply"]')]);
  assert.match(await page.evaluate(() => location.hash), new RegExp(`eval_run=${id}`));
  await page.waitForSelector('[data-test="report-loaded"]');
  assert.equal(num(await kpi(page, 'requests')), want);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('checklist: each point of the p95-over-time chart is report --json over that hour', async () => {
  const page = await open('#/report?bucket=hour', 'report-loaded');
  const points = await page.$$eval('[data-test="chart-latency"] circle[data-series="p95"]',
    (cs) => cs.map((c) => [c.getAttribute('data-x'), Number(c.getAttribute('data-y'))]));
  assert.ok(points.length >= 1);
  for (const [x, y] of points) {
    const until = new Date(Date.parse(x) + 3600e3).toISOString();
    const r = cliJson(['report', '--json', '--since', x, '--until', until]);
    assert.equal(y, r.requests.latency_ms.p95, `p95 of the hour from ${x}`);
  }
  // per request name: answer's points are `report --name answer` over the hour
  const named = await page.$$eval('[data-test="chart-latency-names"] circle[data-series="answer"]',
    (cs) => cs.map((c) => [c.getAttribute('data-x'), Number(c.getAttribute('data-y'))]));
  assert.ok(named.length >= 1);
  for (const [x, y] of named) {
    const until = new Date(Date.parse(x) + 3600e3).toISOString();
    assert.equal(y, cliJson(['report', '--json', '--name', 'answer', '--since', x, '--until', until]).requests.latency_ms.p95);
  }
  await screenshot(page, 'charts-report');
  assert.deepEqual(page.problems, []);
});

test('checklist: axes read as a person reads them: 0 without a unit, the time axis at the buckets\' own starts', async () => {
  for (const bucket of ['day', 'hour']) {
    const page = await open(`#/report?bucket=${bucket}`, 'report-loaded');
    const series = JSON.parse(cli(['report', '--json']).stdout); // the store's span: all in one bucket or a few
    assert.ok(series.requests.count > 0);
    const starts = await page.$$eval('[data-test="chart-latency"] circle[data-series="p95"]', (cs) => cs.map((c) => c.getAttribute('data-x')));
    const want = starts.map((x) => (bucket === 'day' ? x.slice(5, 10) : x.slice(5, 10) + ' ' + x.slice(11, 16)));
    for (const fig of ['chart-latency', 'chart-steps', 'chart-tokens', 'chart-errors']) {
      const yLabels = await page.$$eval(`[data-test="${fig}"] text.axis:not([data-test="x-tick"])`, (ts) => ts.map((t) => t.textContent));
      assert.equal(yLabels[0], '0', `${fig}: the axis starts at 0, not "0 ns": ${yLabels}`);
      const xLabels = await page.$$eval(`[data-test="${fig}"] [data-test="x-tick"]`, (ts) => ts.map((t) => t.textContent));
      assert.ok(xLabels.length >= 1, fig);
      // every label is a bucket the chart has a point at (a day bucket is a date, no hour in it)
      for (const l of xLabels) assert.ok(want.includes(l), `${fig} (${bucket}): '${l}' is not one of the buckets ${want}`);
      assert.equal(new Set(xLabels).size, xLabels.length, `${fig}: no label twice`);
    }
    assert.deepEqual(page.problems, []);
    await page.close();
  }
});

test('checklist: store text is shown as text, nothing of it runs', async () => {
  const page = await open('#/report?evals=include', 'report-loaded');
  const bodyText = await page.$eval('[data-test="report-body"]', (e) => e.textContent);
  assert.ok(bodyText.includes(XSS), 'the hostile name is shown literally');
  assert.equal(await page.$$eval('img', (i) => i.length), 0);
  assert.equal(await page.$$eval('[data-test="report-body"] script', (s) => s.length), 0);
  // the chart labels are text nodes too
  const labels = await page.$$eval('[data-test="chart-slowest"] g.bar', (gs) => gs.map((g) => g.getAttribute('data-label')));
  assert.ok(labels.includes(XSS));
  assert.deepEqual(page.problems, []);
});

test('hostile text in every eval and request field reaches the checklist, eval and compare pages as text; nothing runs', async () => {
  // suite name, case ids, scorer name and reason, model, user, session, tags, span names, error messages
  const IMG = '<img src=x onerror="window.__xss=(window.__xss||0)+1">';
  const L = JSON.stringify(IMG); // a valid Lua string literal
  const hdir = tmpdir('hostile');
  const hdb = path.join(hdir, 'h.db');
  fs.writeFileSync(path.join(hdir, 'suite.lua'), `
local X = ${L}
return suite(X .. "suite") {
  dataset = {{id = X .. "case", input = "a"}, {id = "ok" .. X, input = "b"}},
  run = function(case)
    return trace(X .. "trace", {user = X .. "user", session = X .. "session", tags = {X .. "tag"}}, function()
      return span(X .. "span", function()
        return llm.call{provider = "mock", model = X .. "model", messages = {{role = "user", content = case.input}},
                        mock = {reply = X, latency_ms = 1}}.text
      end)
    end)
  end,
  scorers = {{name = X .. "scorer", score = function(o) return 0.2, X .. "reason" end}},
  threshold = 0,
}`);
  for (let i = 0; i < 2; i++) {
    const r = moonspan(['--db', hdb, 'eval', ...(i ? ['--baseline', 'last'] : []), path.join(hdir, 'suite.lua')]);
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
  }
  runPipeline(hdb, `pcall(trace, ${L}, {user = ${L}}, function() span(${L}, function() error(${L}) end) end)`, 'h.lua');
  const trace = JSON.parse(moonspan(['--db', hdb, 'traces', '--json', '--evals', 'include', '--limit', '1']).stdout)[0];
  const other = await startUi(hdb);
  try {
    const page = await newPage(browser);
    for (const hash of ['#/evals', '#/eval/1', '#/eval/2', '#/compare?a=eval:1&b=eval:2', '#/compare?a=eval:1&b=eval:2&by=user',
      '#/compare?a=eval:1&b=eval:2&by=session', '#/report?evals=include', '#/traces?evals=include', `#/trace/${trace.trace_id}`]) {
      await page.goto(other.url + hash, { waitUntil: 'networkidle0' });
      await page.waitForFunction(() => document.querySelector('#page').textContent.length > 40);
      await new Promise((r) => setTimeout(r, 200)); // an onerror would have fired by now
      assert.ok((await page.$eval('#page', (e) => e.textContent)).includes(IMG), `${hash} shows the text as it is`);
      assert.equal(await page.$$eval('#page img, #page script', (es) => es.length), 0, hash);
      assert.equal(await page.evaluate(() => window.__xss), undefined, hash);
      assert.deepEqual(page.problems, [], hash);
    }
    await screenshot(page, 'charts-hostile-trace');
    await page.close();
  } finally {
    await other.stop();
  }
});

test('checklist: follows a run while it writes', async () => {
  const page = await open('#/report', 'report-loaded');
  const beforeCount = num(await kpi(page, 'requests'));
  runPipeline(db, 'for i = 1, 3 do trace("late", function() span("x", function() end) end) end', 'late.lua');
  await page.waitForFunction((n) => Number(document.querySelector('[data-test="kpi-requests"]').getAttribute('data-value')) === n,
    { timeout: 10000 }, beforeCount + 3);
  assert.deepEqual(page.problems, []);
});

test('evals: pass rate per suite over time, each run as runs --json has it', async () => {
  const page = await open('#/evals', 'evals-loaded');
  const runs = cliJson(['runs', '--json', '--limit', '100']).flatMap((r) => r.eval_runs);
  const rows = await page.$$eval('[data-test="eval-row"]', (trs) => trs.map((tr) => [Number(tr.getAttribute('data-id')),
    tr.querySelector('[data-test="pass-rate"]').getAttribute('data-value')]));
  assert.equal(rows.length, runs.length);
  for (const [id, rate] of rows) assert.equal(Number(rate), runs.find((e) => e.id === id).pass_rate, `eval run ${id}`);
  const pts = await page.$$eval('[data-test="chart-pass-rate"] circle', (cs) => cs.map((c) => [c.getAttribute('data-series'), Number(c.getAttribute('data-y'))]));
  assert.deepEqual(pts.map((p) => p[0]), ['regress-demo', 'regress-demo']);
  assert.deepEqual(pts.map((p) => p[1]), [1, 0.75]);
  // a pass rate is read against 100%, and runs seconds apart do not repeat one time label
  const axis = await page.$$eval('[data-test="chart-pass-rate"] text.axis:not([data-test="x-tick"])', (ts) => ts.map((t) => t.textContent));
  assert.equal(axis[axis.length - 1], '100.0%');
  const xs = await page.$$eval('[data-test="chart-pass-rate"] [data-test="x-tick"]', (ts) => ts.map((t) => t.textContent));
  assert.equal(new Set(xs).size, xs.length, `time labels repeat: ${xs}`);
  await screenshot(page, 'charts-evals');
  // a point opens its run
  await Promise.all([page.waitForSelector('[data-test="eval-loaded"]'), page.click('[data-test="chart-pass-rate"] circle:last-of-type')]);
  assert.match(await page.evaluate(() => location.hash), /^#\/eval\/\d+$/);
  assert.deepEqual(page.problems, []);
});

test('eval run: its cases with scores and reasons, the regression as the run printed it, each case linked to its trace', async () => {
  const [base, cur] = evalIds;
  const page = await open(`#/eval/${cur}`, 'eval-loaded');
  const cases = await page.$$eval('[data-test="case-row"]', (trs) => trs.map((tr) => ({
    id: tr.getAttribute('data-case'), pass: tr.getAttribute('data-pass'), text: tr.textContent,
    score: tr.querySelector('[data-test="score"]')?.getAttribute('data-score'),
    trace: tr.querySelector('[data-test="case-trace"]')?.getAttribute('href'),
  })));
  assert.deepEqual(cases.map((c) => c.id).sort(), [XSS, 'a', 'b', 'c'].sort());
  const b = cases.find((c) => c.id === 'b');
  assert.equal(b.pass, 'false');
  assert.equal(b.score, '0');
  assert.ok(b.text.includes('newly failing'), b.text);
  assert.ok(b.text.includes('does not contain'), 'the scorer\'s reason: ' + b.text);
  // every case links to its trace, and the trace is in the store
  for (const c of cases) {
    assert.match(c.trace, /^#\/trace\/[0-9a-f]{32}$/);
    const shown = moonspan(['--db', db, 'show', '--json', c.trace.slice(8)]);
    assert.equal(shown.status, 0, `trace of case ${c.id}: ${shown.stderr}`);
  }
  // the comparison: the verdict and p-value the eval printed
  const line = evalOut.split('\n').find((l) => l.includes('pass rate') && l.includes('McNemar'));
  const [, p, verdict] = line.match(/McNemar p = ([^:]+): (.+)$/);
  const row = await page.$eval('[data-test="comparison-row"][data-metric="pass"]', (tr) => tr.textContent);
  assert.ok(row.includes(`McNemar p = ${p}`), row);
  assert.ok(row.includes(verdict.trim()), row);
  const worse = await page.$eval('[data-test="worse"]', (e) => e.textContent);
  assert.ok(worse.includes('b (pass -> fail)'), worse);
  assert.equal(await page.$eval('[data-test="compare-link"]', (a) => a.getAttribute('href')), `#/compare?a=eval:${base}&b=eval:${cur}`);
  assert.equal(await page.$$eval('img', (i) => i.length), 0);
  await screenshot(page, 'charts-eval');
  // a case's trace link opens the trace's page
  await page.click(`[data-test="case-row"][data-case="b"] [data-test="case-trace"]`);
  await page.waitForFunction(() => location.hash.startsWith('#/trace/'));
  assert.equal(await page.evaluate(() => location.hash), b.trace);
  assert.deepEqual(page.problems, []);
});

test('compare: two runs side by side with the verdicts of moonspan diff', async () => {
  const page = await open('#/compare', 'compare-empty');
  // pick the two seed runs from the selects
  const runs = cliJson(['runs', '--json', '--limit', '100']).filter((r) => r.script.endsWith('seed.lua') || r.script.endsWith('seed2.lua'))
    .map((r) => r.id).sort((x, y) => x - y);
  await page.select('[data-test="pick-a"]', 'run:' + runs[0]);
  await page.select('[data-test="pick-b"]', 'run:' + runs[1]);
  await Promise.all([page.waitForSelector('[data-test="compare-loaded"]'), page.click('[data-test="compare-apply"]')]);
  const d = cliJson(['diff', '--json', 'run:' + runs[0], 'run:' + runs[1]]);
  const all = '[data-test="request-row"][data-name=""]';
  assert.equal(await page.$eval(`${all} [data-test="verdict-time"]`, (e) => e.textContent), d.requests[0].time);
  assert.equal(await page.$eval(`${all} [data-test="verdict-cost"]`, (e) => e.textContent), d.requests[0].cost);
  const p95 = await page.$eval(`${all} [data-measure="p95"]`, (tr) => [tr.querySelector('[data-test="a"]').getAttribute('data-value'),
    tr.querySelector('[data-test="b"]').getAttribute('data-value'), tr.querySelector('[data-test="verdict"]').textContent]);
  assert.deepEqual(p95, [String(d.requests[0].p95_ms.a), String(d.requests[0].p95_ms.b), d.requests[0].p95_ms.verdict]);
  const steps = await page.$$eval('[data-test="step-row"]', (trs) => trs.map((tr) => [tr.getAttribute('data-step'),
    tr.querySelector('[data-test="step-verdict"]').textContent]));
  assert.deepEqual(steps, d.steps.map((s) => [s.path.join(' / '), s.verdict]));
  // the column says which verdict is which: time, then cost when the step has one
  const heads = await page.$$eval('[data-test="steps-compare"] th', (ths) => ths.map((th) => th.textContent));
  assert.equal(heads[heads.length - 1], 'verdict: time · cost');
  const costs = await page.$$eval('[data-test="step-row"]', (trs) => trs.map((tr) => {
    const c = tr.querySelector('[data-test="step-cost-verdict"]');
    return c ? c.textContent : null;
  }));
  assert.deepEqual(costs, d.steps.map((s) => s.cost || null));
  assert.deepEqual(page.problems, []);
});

test('compare: request rows by user, as diff --by user', async () => {
  // two runs with enough requests per user for a row each (diff wants 5 a side)
  const src = 'for i = 1, 6 do for _, u in ipairs({"dora", "eve"}) do trace("ask", {user = u}, function()'
    + ' span("s", function() moonspan.sleep_ms(1) end) end) end end';
  runPipeline(db, src, 'users1.lua');
  runPipeline(db, src, 'users2.lua');
  const runs = cliJson(['runs', '--json', '--limit', '100']).filter((r) => /users[12]\.lua$/.test(r.script))
    .map((r) => r.id).sort((x, y) => x - y);
  const page = await open(`#/compare?a=run:${runs[0]}&b=run:${runs[1]}&by=user`, 'compare-loaded');
  const d = cliJson(['diff', '--json', '--by', 'user', 'run:' + runs[0], 'run:' + runs[1]]);
  const rows = await page.$$eval('[data-test="request-row"]', (ss) => ss.map((s) => [s.getAttribute('data-name'),
    s.querySelector('[data-test="verdict-time"]').textContent, s.querySelector('[data-test="verdict-cost"]').textContent]));
  assert.deepEqual(rows, d.requests.map((r) => [r.all ? '' : String(r.user), r.time, r.cost]));
  assert.deepEqual(rows.map((r) => r[0]), ['', 'dora', 'eve']);
  assert.equal(await page.$eval('[data-test="compare-by"]', (s) => s.value), 'user');
  assert.deepEqual(page.problems, []);
});

test('compare: an eval run against its baseline, by typed sides', async () => {
  const [base, cur] = evalIds;
  const page = await open(`#/compare?a=eval:${base}&b=eval:${cur}`, 'compare-loaded');
  const d = cliJson(['diff', '--json', `eval:${base}`, `eval:${cur}`]);
  const verdicts = await page.$$eval('[data-test="request-row"]', (ss) => ss.map((s) => [s.getAttribute('data-name'),
    s.querySelector('[data-test="verdict-time"]').textContent, s.querySelector('[data-test="verdict-errors"]').textContent]));
  assert.deepEqual(verdicts, d.requests.map((r) => [r.name === null ? '' : r.name, r.time, r.errors]));
  assert.equal(await page.$eval('[data-test="side-a"]', (i) => i.value), `eval:${base}`);
  await screenshot(page, 'charts-compare');
  assert.deepEqual(page.problems, []);
});

test('the endpoints: JSON, no-store, and one-line errors that name the fix', async () => {
  const ok = await get(ui.base + '/api/report?bucket=day&name=answer');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('content-type'), 'application/json');
  assert.equal(ok.headers.get('cache-control'), 'no-store');
  assert.equal(ok.json.series.bucket, 'day');
  assert.equal(ok.json.requests.count, cliJson(['report', '--json', '--name', 'answer']).requests.count);
  const cases = [
    ['/api/report?bucket=week', 400, /bucket=hour or bucket=day/],
    ['/api/report?since=yesterday', 400, /since/],
    ['/api/report?run=999', 404, /no run 999/],
    ['/api/eval', 400, /id is missing.*\/api\/evals/],
    ['/api/eval?id=x', 400, /whole number/],
    ['/api/eval?id=999', 404, /no eval run 999/],
    ['/api/evals?limit=0', 400, /limit/],
    ['/api/diff?a=run:1', 400, /two sides/],
    ['/api/diff?a=run:x&b=1', 400, /not a run id; give a whole number/],
    ['/api/diff?a=run:999&b=1', 404, /no run 999/],
    ['/api/diff?a=1&b=1&by=day', 400, /by=path or by=name \(steps\), or by=user or by=session/],
    ['/api/runs?limit=-1', 400, /limit/],
  ];
  for (const [url, status, msg] of cases) {
    const r = await get(ui.base + url);
    assert.equal(r.status, status, url + ' ' + r.text);
    assert.match(r.json.error, msg, url);
    assert.ok(!r.json.error.includes('\n'), 'one line');
  }
  const runs = await get(ui.base + '/api/runs?limit=100');
  assert.deepEqual(runs.json.map((r) => r.id), cliJson(['runs', '--json', '--limit', '100']).map((r) => r.id));
  const evals = await get(ui.base + '/api/evals');
  assert.deepEqual(evals.json.runs.map((r) => r.id), evalIds.slice().reverse());
  assert.equal(evals.json.runs[0].baseline_id, evalIds[0]);
  assert.equal(evals.json.runs[1].baseline_id, null);
});
