// harness.mjs — what the browser tests share: a store seeded by running real
// pipelines through the real binary, `moonspan ui` started on a free port,
// Debian's Chromium driven headless with puppeteer-core, and screenshots
// under tests/out/ for a person to look at.
//
// The binary is $MOONSPAN_BIN (tests/run.sh sets it), else build/moonspan.
// A missing binary, browser or node_modules fails the test; nothing skips.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const bin = process.env.MOONSPAN_BIN || path.join(root, 'build', 'moonspan');
export const chromiumPath = process.env.MOONSPAN_CHROMIUM || '/usr/bin/chromium';
export const outDir = path.join(root, 'tests', 'out');

/* A fresh temporary folder, removed when the process exits. */
export function tmpdir(tag = 'ui') {
  const base = process.env.MOONSPAN_TEST_TMP || os.tmpdir();
  const d = fs.mkdtempSync(path.join(base, `moonspan-${tag}-`));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/* Runs the binary with args; returns {status, stdout, stderr}. */
export function moonspan(args, opts = {}) {
  try {
    const stdout = execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    if (e.status === undefined || e.status === null) throw e;
    return { status: e.status, stdout: e.stdout || '', stderr: e.stderr || '' };
  }
}

/* Runs Lua source as a pipeline into db (`moonspan run`); throws on failure. */
export function runPipeline(db, source, name = 'pipeline.lua') {
  const dir = path.dirname(db);
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  const r = moonspan(['--db', db, 'run', '--quiet', file]);
  if (r.status !== 0) throw new Error(`moonspan run ${name} exited ${r.status}: ${r.stderr}`);
  return r;
}

/* A store seeded by tests/ui/seed.lua (and `extra` Lua source, when
 * given): returns the store's path. */
export function seedStore(extra) {
  const dir = tmpdir('seed');
  const db = path.join(dir, 'store.db');
  runPipeline(db, fs.readFileSync(path.join(here, 'seed.lua'), 'utf8'), 'seed.lua');
  if (extra) runPipeline(db, extra, 'extra.lua');
  return db;
}

/* `moonspan traces --json` with these flags: the CLI's answer to compare the UI's with. */
export function tracesJson(db, flags = []) {
  const r = moonspan(['--db', db, 'traces', '--json', '--limit', '1000000', ...flags]);
  if (r.status !== 0) throw new Error(`moonspan traces ${flags.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/* Starts `moonspan ui` on a free loopback port (or opts.addr); resolves to
 * {url, base, port, proc, stop()} once it printed its address. `url` is
 * the printed one (with ?token= when opts.token is set), `base` is
 * http://HOST:PORT without it. */
export function startUi(db, opts = {}) {
  const args = ['--db', db, 'ui', '--addr', opts.addr || '127.0.0.1:0'];
  if (opts.token) args.push('--token', opts.token);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`moonspan ui printed no address in 10 s; stderr: ${err}`));
    }, 10000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`moonspan ui exited ${code} before listening; stderr: ${err}`));
    });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^moonspan ui: (http:\/\/([^/:]+):(\d+)\/(\S*))\n/);
      if (!m) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      const stop = () => new Promise((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res(proc.exitCode);
        proc.once('exit', (code) => res(code));
        proc.kill('SIGTERM');
      });
      resolve({ url: m[1], base: `http://${m[2]}:${m[3]}`, port: Number(m[3]), proc, stop, stderr: () => err });
    });
  });
}

/* Launches Debian's Chromium headless (--no-sandbox as root, where its
 * sandbox cannot start). */
export async function openBrowser() {
  if (!fs.existsSync(chromiumPath))
    throw new Error(`no browser at ${chromiumPath}: install Debian's chromium (make deps)`);
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  return puppeteer.launch({ executablePath: chromiumPath, headless: true, args,
                            defaultViewport: { width: 1400, height: 900 } });
}

/* A page that records what would show a script ran or failed: dialogs
 * (alert), console errors, page errors and Content-Security-Policy
 * violations (an injected inline handler the policy blocked), in
 * page.problems. Dialogs are dismissed so the page goes on. */
export async function newPage(browser) {
  const page = await browser.newPage();
  page.problems = [];
  await page.exposeFunction('__msProblem', (text) => page.problems.push(text));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation',
      (e) => window.__msProblem(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`));
  });
  page.on('dialog', async (d) => { page.problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  return page;
}

/* Writes tests/out/NAME.png (the whole page). */
export async function screenshot(page, name) {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/* GET base+path with optional headers: {status, headers, text, json}. */
export async function get(url, headers = {}, method = 'GET') {
  const r = await fetch(url, { method, headers });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = null; }
  return { status: r.status, headers: r.headers, text, json };
}

/* Waits until the traces page shows its list (or its empty note) for the
 * current hash, and returns the trace ids of its rows in order. */
export async function shownTraceIds(page) {
  await page.waitForSelector('[data-test="traces-total"]');
  return page.$$eval('[data-test="trace-row"]', (rows) => rows.map((r) => r.getAttribute('data-trace-id')));
}

/* Navigates the open app to hash `h` and waits for the traces page's new list. */
export async function gotoTraces(page, h) {
  await page.evaluate((hash) => {
    const old = document.querySelector('[data-test="traces"]');
    if (old) old.setAttribute('data-stale', '1');
    window.location.hash = hash;
  }, h);
  await page.waitForFunction(() => {
    const box = document.querySelector('[data-test="traces"]');
    return box && !box.hasAttribute('data-stale') && box.querySelector('[data-test="traces-total"], [data-test="traces-error"]');
  });
  return page.$$eval('[data-test="trace-row"]', (rows) => rows.map((r) => r.getAttribute('data-trace-id')));
}
