// page_evals.js — #/evals: eval runs, pass rate per suite over time
// (GET /api/evals); #/eval/ID: one run's cases with scores and reasons,
// each linked to its trace, and the comparison with its baseline as
// `moonspan eval --baseline` printed and stored it (GET /api/eval).
'use strict';

(function () {
  const pct = (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(1) + '%');
  const num = (x) => (x === null || x === undefined ? '–' : Number(x).toFixed(3));
  const signed = (x, f) => (x === null || x === undefined ? '–' : (x < 0 ? '-' : '+') + f(Math.abs(x)));
  const pval = (p) => (p === null || p === undefined ? '–' : p < 0.001 ? '< 0.001' : p.toFixed(3));

  function verdict(v, test) {
    const cls = v === 'regressed' ? 'status-error' : v === 'improved' ? 'status-ok' : 'muted';
    return ms.el('span', { class: 'verdict ' + cls, 'data-test': test || 'verdict' }, v || '–');
  }

  function statusCell(s) {
    return ms.el('span', { class: s === 'passed' ? 'status-ok' : s === 'failed' ? 'status-error' : 'status-other' }, s);
  }

  ms.page('/evals', async (params, el) => {
    el.appendChild(ms.el('h1', null, 'Eval runs'));
    const body = ms.el('div');
    el.appendChild(body);
    const load = async () => {
      const r = await ms.api('/api/evals', { limit: 500 });
      const out = ms.el('div', { 'data-test': 'evals-loaded' });
      if (!r.runs.length) {
        out.appendChild(ms.el('p', { class: 'note', 'data-test': 'evals-empty' },
          'No eval runs in this store: `moonspan eval SUITE.lua` makes them.'));
        body.replaceChildren(out);
        return;
      }
      const suites = new Map();
      r.runs.slice().reverse().forEach((run) => {
        if (run.pass_rate === null) return;
        if (!suites.has(run.suite)) suites.set(run.suite, []);
        suites.get(run.suite).push({ x: Date.parse(run.start), y: run.pass_rate, label: `eval run ${run.id}`, href: '#/eval/' + run.id });
      });
      out.appendChild(ms.chart.line({
        title: 'Pass rate per suite (click a point for its run)', test: 'chart-pass-rate', yFormat: pct, yMax: 1,
        series: [...suites.entries()].map(([name, points]) => ({ name, points })),
      }));
      out.appendChild(ms.el('table', { class: 'grid', 'data-test': 'evals-table' },
        ms.el('thead', null, ms.el('tr', null, ['run', 'suite', 'started', 'cases', 'passed', 'pass rate', 'threshold',
          'p95', 'cost', 'status', 'baseline', 'pass-rate verdict'].map((h, i) => ms.el('th', { class: i >= 3 && i <= 8 ? 'num' : null }, h)))),
        ms.el('tbody', null, r.runs.map((run) => ms.el('tr', { 'data-test': 'eval-row', 'data-id': run.id },
          ms.el('td', null, ms.el('a', { href: '#/eval/' + run.id, 'data-test': 'eval-link' }, String(run.id))),
          ms.el('td', { class: 'name' }, run.suite),
          ms.el('td', null, ms.fmt.time(run.start)),
          ms.el('td', { class: 'num' }, run.cases === null ? '–' : String(run.cases)),
          ms.el('td', { class: 'num' }, run.passed === null ? '–' : String(run.passed)),
          ms.el('td', { class: 'num', 'data-test': 'pass-rate', 'data-value': run.pass_rate === null ? '' : run.pass_rate }, pct(run.pass_rate)),
          ms.el('td', { class: 'num' }, pct(run.threshold)),
          ms.el('td', { class: 'num' }, ms.fmt.ms(run.p95_ms)),
          ms.el('td', { class: 'num' }, ms.fmt.usd(run.cost_usd)),
          ms.el('td', null, statusCell(run.status)),
          ms.el('td', null, run.baseline_id ? ms.el('a', { href: '#/eval/' + run.baseline_id }, 'eval run ' + run.baseline_id) : '–'),
          ms.el('td', null, run.pass_verdict ? verdict(run.pass_verdict) : '–'))))));
      if (r.more) out.appendChild(ms.el('p', { class: 'note' }, 'Older runs are not listed (the newest 500 are).'));
      body.replaceChildren(out);
    };
    await load();
    ms.onChange(ms.chart.coalesce(load));
  });

  // The comparison table: the lines `moonspan eval --baseline` prints.
  function comparison(c, runId) {
    const box = ms.el('section', { 'data-test': 'comparison' });
    box.appendChild(ms.el('h2', null, `Against its baseline, eval run ${c.baseline_run}`));
    box.appendChild(ms.el('p', { class: 'note' },
      `${c.pairs} pairs by case and repeat` +
      (c.unpaired_current + c.unpaired_baseline ? ` (unpaired, left out: ${c.unpaired_current} of this run, ${c.unpaired_baseline} of the baseline)` : '') +
      `; verdicts at alpha ${c.alpha}, intervals ${Math.round(c.level * 100)}%; `,
      ms.el('a', { href: `#/compare?a=eval:${c.baseline_run}&b=eval:${runId}`, 'data-test': 'compare-link' }, 'compare the traces step by step')));
    const rows = [];
    const p = c.pass;
    rows.push(['pass rate', pct(p.before), pct(p.after),
      p.before === null || p.after === null ? '–' : signed((p.after - p.before) * 100, (x) => x.toFixed(1) + ' pts'),
      `${p.pass_to_fail} pass→fail, ${p.fail_to_pass} fail→pass, McNemar p = ${pval(p.p)}`, p.verdict, 'pass']);
    (c.scorers || []).forEach((s) => {
      rows.push(['score ' + s.name, num(s.before), num(s.after), s.binary ? '–' : `${signed(s.est, num)} [${signed(s.lo, num)}, ${signed(s.hi, num)}]`,
        s.binary ? `${s.worse} worse, ${s.better} better, McNemar p = ${pval(s.p)}` : 'paired bootstrap', s.verdict, 'score-' + s.name]);
    });
    const interval = (r, f) => (r.est === null || r.est === undefined ? 'no pairs' : `${signed(r.est, f)} [${signed(r.lo, f)}, ${signed(r.hi, f)}]`);
    rows.push(['latency per case', '', '', interval(c.latency, ms.fmt.ms), 'paired bootstrap', c.latency.verdict, 'latency']);
    if (c.cost && c.cost.n > 0) rows.push(['cost per case', '', '', interval(c.cost, ms.fmt.usd), 'paired bootstrap', c.cost.verdict, 'cost']);
    box.appendChild(ms.el('table', { class: 'grid', 'data-test': 'comparison-table' },
      ms.el('thead', null, ms.el('tr', null, ['', 'baseline', 'this run', 'difference [95% interval]', 'test', 'verdict']
        .map((h) => ms.el('th', null, h)))),
      ms.el('tbody', null, rows.map((r) => ms.el('tr', { 'data-test': 'comparison-row', 'data-metric': r[6] },
        ms.el('td', null, r[0]), ms.el('td', { class: 'num' }, r[1]), ms.el('td', { class: 'num' }, r[2]),
        ms.el('td', { class: 'num', 'data-test': 'interval' }, r[3]), ms.el('td', { class: 'muted' }, r[4]),
        ms.el('td', null, verdict(r[5])))))));
    const mde = [p.mde !== null && p.mde !== undefined ? `pass rate ${(p.mde * 100).toFixed(1)} pts` : 'pass rate: none at this size'];
    if (c.latency.mde !== null && c.latency.mde !== undefined) mde.push('latency ' + ms.fmt.ms(c.latency.mde));
    box.appendChild(ms.el('p', { class: 'note' }, `Smallest change this suite can detect (${c.pairs} pairs, power 80%): ${mde.join(', ')}.`));
    const worse = c.worse || [];
    if (worse.length) {
      box.appendChild(ms.el('h2', null, 'Cases that got worse'));
      box.appendChild(ms.el('ul', { 'data-test': 'worse' }, worse.map((w) => ms.el('li', null,
        `${w.case_id}${w.repeat_index > 1 ? '#' + w.repeat_index : ''} (${w.why})`, w.first_change ? ': ' + w.first_change : ''))));
    }
    return box;
  }

  function scoreList(scores) {
    if (!Array.isArray(scores) || !scores.length) return '–';
    return ms.el('ul', { class: 'scores' }, scores.map((s) => ms.el('li', { 'data-test': 'score', 'data-name': s.name, 'data-score': s.score },
      ms.el('b', null, `${s.name} ${s.score === null || s.score === undefined ? '–' : +Number(s.score).toFixed(3)}`),
      s.reason ? ' — ' + s.reason : '')));
  }

  ms.page('/eval', async (params, el) => {
    const id = params.rest;
    const body = ms.el('div');
    el.appendChild(body);
    const load = async () => {
      const r = await ms.api('/api/eval', { id });
      const run = r.run;
      const out = ms.el('div', { 'data-test': 'eval-loaded' });
      out.appendChild(ms.el('h1', null, `Eval run ${run.id}: `, ms.el('span', { 'data-test': 'suite' }, run.suite)));
      out.appendChild(ms.el('p', { class: 'note' }, `${run.suite_file} · started ${ms.fmt.time(run.start)} · `, statusCell(run.status),
        ` · ${run.passed === null ? '–' : run.passed}/${run.cases === null ? '–' : run.cases} passed (${pct(run.pass_rate)}, threshold ${pct(run.threshold)})` +
        ` · p50 ${ms.fmt.ms(run.p50_ms)}, p95 ${ms.fmt.ms(run.p95_ms)} · cost ${ms.fmt.usd(run.cost_usd)}` +
        (run.git_commit ? ` · commit ${run.git_commit.slice(0, 12)}` : ''), ' · ',
        ms.el('a', { href: `#/report?eval_run=${run.id}` }, 'its traces as a checklist')));
      if (Array.isArray(r.gates) && r.gates.length) {
        out.appendChild(ms.el('ul', { 'data-test': 'gates' }, r.gates.map((g) => ms.el('li', { class: g.pass ? 'status-ok' : 'status-error' },
          `gate ${g.name || 'gate'}: ${g.pass ? 'passed' : 'failed'}${g.reason ? ' — ' + g.reason : ''}`))));
      }
      if (r.comparison) out.appendChild(comparison(r.comparison, run.id));
      else out.appendChild(ms.el('p', { class: 'note', 'data-test': 'no-comparison' },
        'No stored comparison: this run was made without --baseline (`moonspan eval --baseline last` compares and keeps the result). ',
        'Its traces can still be compared with another run on the Compare page.'));
      out.appendChild(ms.el('h2', null, 'Cases'));
      const hasBase = !!r.comparison;
      out.appendChild(ms.el('table', { class: 'grid', 'data-test': 'cases-table' },
        ms.el('thead', null, ms.el('tr', null, ['case', 'repeat', 'result', 'scores and reasons', 'latency', 'tokens', 'cost', 'trace']
          .concat(hasBase ? ['baseline'] : []).map((h, i) => ms.el('th', { class: i >= 4 && i <= 6 ? 'num' : null }, h)))),
        ms.el('tbody', null, r.cases.map((c) => ms.el('tr', { 'data-test': 'case-row', 'data-case': c.case_id, 'data-pass': String(c.pass) },
          ms.el('td', { class: 'name' }, c.case_id),
          ms.el('td', { class: 'num' }, String(c.repeat)),
          ms.el('td', null, ms.el('span', { class: c.pass ? 'status-ok' : 'status-error' }, c.pass ? 'pass' : 'fail'),
            hasBase && c.baseline_pass === true && !c.pass ? ms.el('div', { class: 'status-error' }, 'newly failing') : null,
            hasBase && c.baseline_pass === false && c.pass ? ms.el('div', { class: 'status-ok' }, 'newly passing') : null,
            c.error ? ms.el('div', { class: 'error' }, c.error) : null),
          ms.el('td', null, scoreList(c.scores)),
          ms.el('td', { class: 'num' }, ms.fmt.ms(c.latency_ms)),
          ms.el('td', { class: 'num' }, c.input_tokens === null ? '–' : ms.fmt.tokens(c.input_tokens + c.output_tokens)),
          ms.el('td', { class: 'num' }, ms.fmt.usd(c.cost_usd)),
          ms.el('td', { class: 'id' }, c.trace_id ? ms.el('a', { href: '#/trace/' + c.trace_id, 'data-test': 'case-trace' }, c.trace_id.slice(0, 12)) : '–'),
          hasBase ? ms.el('td', { class: 'id' }, c.baseline_trace_id
            ? ms.el('a', { href: '#/trace/' + c.baseline_trace_id }, (c.baseline_pass ? 'pass ' : 'fail ') + c.baseline_trace_id.slice(0, 8)) : '–') : null)))));
      body.replaceChildren(out);
    };
    await load();
    ms.onChange(ms.chart.coalesce(load));
  });
})();
