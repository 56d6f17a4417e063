// page_compare.js — #/compare?a=SIDE&b=SIDE[&by=path|name]: two runs (or
// any `moonspan diff` sides) side by side, request rows then step by
// step, with the verdicts of `moonspan diff` (GET /api/diff, the same
// JSON); the runs to pick from come from GET /api/runs.
'use strict';

(function () {
  const pct = (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(1) + '%');
  const pts = (x) => (x * 100).toFixed(1) + ' pts';
  const n = (k, what) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const signed = (x, f) => (x === null || x === undefined ? '–' : (x < 0 ? '-' : '+') + f(Math.abs(x)));
  const VERDICT_BAD = ['slower', 'costlier', 'more errors'];
  const VERDICT_GOOD = ['faster', 'cheaper', 'fewer errors'];

  function verdict(v, test) {
    const cls = VERDICT_BAD.includes(v) ? 'status-error' : VERDICT_GOOD.includes(v) ? 'status-ok' : 'muted';
    return ms.el('span', { class: 'verdict ' + cls, 'data-test': test || 'verdict' }, v === null || v === undefined ? '–' : v);
  }

  // The side choices: each run, and each eval run under it.
  function sideOptions(runs) {
    const opts = [ms.el('option', { value: '' }, '— pick a run —')];
    runs.forEach((r) => {
      opts.push(ms.el('option', { value: 'run:' + r.id }, `run ${r.id} · ${r.command} ${r.script} · ${ms.fmt.time(r.start)} · ${n(r.traces, 'trace')}`));
      (r.eval_runs || []).forEach((e) => opts.push(ms.el('option', { value: 'eval:' + e.id },
        `  eval run ${e.id} · ${e.suite} · ${e.cases === null ? 'running' : e.passed + '/' + e.cases + ' passed'}`)));
    });
    return opts;
  }

  function picker(params, runs) {
    const side = (k) => {
      const sel = ms.el('select', { 'data-test': 'pick-' + k }, sideOptions(runs));
      const input = ms.el('input', { name: k, value: params.get(k) || '', placeholder: 'run:3, eval:2, last, 7d.., answer_*', 'data-test': 'side-' + k });
      sel.value = [...sel.options].some((o) => o.value === input.value) ? input.value : '';
      sel.addEventListener('change', () => { if (sel.value) input.value = sel.value; });
      return ms.el('label', null, k.toUpperCase(), sel, input);
    };
    const by = ms.el('select', { name: 'by', 'data-test': 'compare-by' }, ms.el('option', { value: 'path' }, 'steps by path'),
      ms.el('option', { value: 'name' }, 'steps by name'), ms.el('option', { value: 'user' }, 'requests by user'),
      ms.el('option', { value: 'session' }, 'requests by session'));
    by.value = ['name', 'user', 'session'].includes(params.get('by')) ? params.get('by') : 'path';
    const form = ms.el('form', { class: 'filters compare', 'data-test': 'compare-form' }, side('a'), side('b'),
      ms.el('label', null, 'grouping', by), ms.el('button', { type: 'submit', 'data-test': 'compare-apply' }, 'Compare'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const q = {};
      new FormData(form).forEach((v, k) => { if (v !== '') q[k] = v; });
      ms.go('/compare', q);
    });
    return form;
  }

  const interval = (m, f) => (m.diff === null || m.diff === undefined ? '–'
    : `${signed(m.diff, f)}` + (m.lo === null || m.lo === undefined ? '' : ` [${signed(m.lo, f)}, ${signed(m.hi, f)}]`));

  // One measure of a request row: A, B, B - A [interval], verdict.
  function measureRow(label, m, f, test, fd) {
    if (!m) return null;
    return ms.el('tr', { 'data-test': 'measure', 'data-measure': test },
      ms.el('td', null, label),
      ms.el('td', { class: 'num', 'data-test': 'a', 'data-value': m.a === null ? '' : m.a }, f(m.a)),
      ms.el('td', { class: 'num', 'data-test': 'b', 'data-value': m.b === null ? '' : m.b }, f(m.b)),
      ms.el('td', { class: 'num' }, interval(m, fd || f) + (m.p !== undefined && m.p !== null ? ` p=${+m.p.toPrecision(3)}` : '')),
      ms.el('td', null, verdict(m.verdict)));
  }

  function requestsTable(rows) {
    // the first row is every request (`all`); the others are per trace name, or
    // per user or session with by=user|session (null: the traces given none)
    const title = (r) => {
      if (r.all || (r.all === undefined && r.name === null)) return ['All requests'];
      if ('user' in r) return r.user === null ? ['Requests of no user'] : ['Requests of user ', ms.el('code', null, r.user)];
      if ('session' in r) return r.session === null ? ['Requests of no session'] : ['Requests of session ', ms.el('code', null, r.session)];
      return ['Requests named ', ms.el('code', null, r.name)];
    };
    const key = (r) => (r.all || (r.all === undefined && r.name === null) ? '' : String('user' in r ? r.user : 'session' in r ? r.session : r.name));
    return rows.map((r) => ms.el('section', { 'data-test': 'request-row', 'data-name': key(r) },
      ms.el('h2', null, title(r),
        ` (${r.count_a.completed} completed in A, ${r.count_b.completed} in B): time `, verdict(r.time, 'verdict-time'),
        ', cost ', verdict(r.cost, 'verdict-cost'), ', errors ', verdict(r.errors, 'verdict-errors')),
      ms.el('table', { class: 'grid' },
        ms.el('thead', null, ms.el('tr', null, ['', 'A', 'B', 'B − A [95% interval]', 'verdict'].map((h, i) => ms.el('th', { class: i && i < 4 ? 'num' : null }, h)))),
        ms.el('tbody', null,
          measureRow('latency p50', r.p50_ms, ms.fmt.ms, 'p50'),
          measureRow('latency p95', r.p95_ms, ms.fmt.ms, 'p95'),
          measureRow('tokens / request', r.tokens_per_request, (x) => (x === null ? '–' : x.toFixed(1)), 'tokens'),
          measureRow('cost / request', r.cost_usd_per_request, ms.fmt.usd, 'cost'),
          measureRow('error rate', r.error_rate, pct, 'errors', pts),
          measureRow('LLM failures', r.llm_failure_rate, pct, 'llm_failures', pts)))));
  }

  function stepsTable(d) {
    const label = (s) => (s.path ? s.path.join(' / ') : s.name);
    const m = (x) => x || {};
    return ms.el('table', { class: 'grid', 'data-test': 'steps-compare' },
      ms.el('thead', null, ms.el('tr', null, ['step', 'n A', 'n B', 'p50 A', 'p50 B', 'p95 A', 'p95 B', 'p95 B − A [95%]',
        'tokens/span A', 'tokens/span B', 'cost/span A', 'cost/span B', 'verdict: time · cost']
        .map((h, i) => ms.el('th', { class: i ? 'num' : null }, h)))),
      ms.el('tbody', null, d.steps.map((s) => ms.el('tr', { 'data-test': 'step-row', 'data-step': label(s) },
        ms.el('td', { class: 'name' }, label(s), s.approximate ? ' ~' : ''),
        ms.el('td', { class: 'num' }, String(s.count_a)), ms.el('td', { class: 'num' }, String(s.count_b)),
        ms.el('td', { class: 'num' }, ms.fmt.ms(m(s.p50_ms).a)), ms.el('td', { class: 'num' }, ms.fmt.ms(m(s.p50_ms).b)),
        ms.el('td', { class: 'num' }, ms.fmt.ms(m(s.p95_ms).a)), ms.el('td', { class: 'num' }, ms.fmt.ms(m(s.p95_ms).b)),
        ms.el('td', { class: 'num' }, s.p95_ms ? interval(s.p95_ms, ms.fmt.ms) : '–'),
        ms.el('td', { class: 'num' }, s.tokens_per_span ? (s.tokens_per_span.a === null ? '–' : s.tokens_per_span.a.toFixed(1)) : '–'),
        ms.el('td', { class: 'num' }, s.tokens_per_span ? (s.tokens_per_span.b === null ? '–' : s.tokens_per_span.b.toFixed(1)) : '–'),
        ms.el('td', { class: 'num' }, s.cost_usd_per_span ? ms.fmt.usd(s.cost_usd_per_span.a) : '–'),
        ms.el('td', { class: 'num' }, s.cost_usd_per_span ? ms.fmt.usd(s.cost_usd_per_span.b) : '–'),
        ms.el('td', null, verdict(s.verdict, 'step-verdict'), s.cost ? ms.el('span', null, ' · ', verdict(s.cost, 'step-cost-verdict')) : null)))));
  }

  ms.page('/compare', async (params, el) => {
    el.appendChild(ms.el('h1', null, 'Compare'));
    const runs = await ms.api('/api/runs', { limit: 200 });
    el.appendChild(picker(params, runs));
    const a = params.get('a'), b = params.get('b');
    const body = ms.el('div');
    el.appendChild(body);
    if (!a || !b) {
      body.appendChild(ms.el('p', { class: 'note', 'data-test': 'compare-empty' },
        'Pick two runs, or type any two sides `moonspan diff` takes (run:3, eval:2, last~1, 14d..7d, a trace-name glob).'));
      return;
    }
    const load = async () => {
      const d = await ms.api('/api/diff', { a, b, by: params.get('by') || undefined });
      const out = ms.el('div', { 'data-test': 'compare-loaded' });
      out.appendChild(ms.el('p', { class: 'note', 'data-test': 'compare-sides' },
        `A: ${d.a.arg} (${d.a.selection}; ${n(d.a.requests, 'request')}) · B: ${d.b.arg} (${d.b.selection}; ${n(d.b.requests, 'request')})`));
      out.appendChild(ms.el('p', { class: 'note' },
        `Differences are B − A with ${Math.round(d.method.level * 100)}% intervals (${d.method.resamples} bootstrap resamples, seed ${d.method.seed}); ` +
        `a verdict needs the interval to exclude 0; a change under ${Math.round(d.method.min_change * 100)}% of A's is negligible; ` +
        `under ${d.method.min_n} values a side says too few.`));
      requestsTable(d.requests).forEach((s) => out.appendChild(s));
      if (d.names_too_few) out.appendChild(ms.el('p', { class: 'note' }, `${d.names_too_few} request names with fewer than ${d.method.min_n} completed requests on a side are not compared by name.`));
      out.appendChild(ms.el('h2', null, `Steps (${d.steps.length}${d.steps_omitted ? ', ' + d.steps_omitted + ' more not listed' : ''}), most changed first`));
      out.appendChild(stepsTable(d));
      body.replaceChildren(out);
    };
    await load();
    ms.onChange(ms.chart.coalesce(load));
  });
})();
