// bench_waterfall.mjs — `make bench` (tests/bench/run.sh): how long the
// trace page takes to draw a 20,001-span trace in headless Chromium, and to
// show its first rows from the navigation (the fetch of /api/trace
// included), five times. Printed, never asserted (trace.test.mjs asserts
// the drawing stays under a second).
import path from 'node:path';
import { tmpdir, moonspan, root, startUi, openBrowser, newPage } from './harness.mjs';

const db = path.join(tmpdir('bench'), 'store.db');
const r = moonspan(['--db', db, 'run', '--quiet', path.join(root, 'tests', 'ui', 'trace_pipelines.lua'), 'big']);
if (r.status !== 0) throw new Error(`moonspan run: ${r.stderr}`);
const id = JSON.parse(moonspan(['--db', db, 'traces', '--json', '--limit', '1']).stdout)[0].trace_id;
const ui = await startUi(db);
const browser = await openBrowser();
try {
  const page = await newPage(browser);
  await page.goto(`${ui.url}#/traces`, { waitUntil: 'load' });
  const draw = [], total = [];
  for (let i = 0; i < 5; i++) {
    await page.evaluate(() => { window.location.hash = '#/traces'; });
    await page.waitForFunction(() => !document.querySelector('[data-test="waterfall"]'));
    const t = await page.evaluate(async (tid) => {
      const t0 = performance.now();
      window.location.hash = '#/trace/' + tid;
      await new Promise((res) => {
        const tick = () => (document.querySelector('[data-test="waterfall"] [data-test="wf-row"]') ? res() : requestAnimationFrame(tick));
        tick();
      });
      await new Promise((res) => requestAnimationFrame(() => res()));
      return performance.now() - t0;
    }, id);
    total.push(t);
    draw.push(await page.$eval('[data-test="waterfall"]', (w) => Number(w.getAttribute('data-render-ms'))));
  }
  const list = (xs) => xs.map((x) => x.toFixed(0)).join(' / ');
  console.log(`  trace page, 20,001 spans: drawn in ${list(draw)} ms; first rows ${list(total)} ms after the navigation (the 6 MB /api/trace reply included)`);
  if (page.problems.length) throw new Error(page.problems.join('\n'));
} finally {
  await browser.close();
  await ui.stop();
}
