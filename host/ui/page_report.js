// page_report.js — #/report: the checklist as charts (GET /api/report):
// latency p50/p95/p99 over time per request name and per step, the
// slowest steps, tokens and cost per request with the daily trend, error
// rate and top errors, retry success. The numbers are `moonspan report
// --json`'s for the same selection; the series are the same numbers per
// hour or day.
'use strict';

(function () {
  const SELECTION = ['since', 'until', 'name', 'run', 'eval_run', 'evals', 'user', 'session', 'tag', 'attr'];
  const pct = (x) => (x === null || x === undefined ? '–' : (x * 100).toFixed(1) + '%');
  const ms_ = (x) => ms.fmt.ms(x);
  const t = (b) => Date.parse(b.start);

  function filterForm(params) {
    // tags as on the traces page: comma-separated, every one must be there
    const shown = (name) => (name === 'tag' ? params.getAll('tag').join(', ') : params.get(name) || '');
    const field = (name, label, attrs) => ms.el('label', null, label,
      ms.el('input', Object.assign({ name, value: shown(name), 'data-test': 'filter-' + name }, attrs || {})));
    const bucket = ms.el('select', { name: 'bucket', 'data-test': 'filter-bucket' },
      ms.el('option', { value: 'day' }, 'day'), ms.el('option', { value: 'hour' }, 'hour'));
    bucket.value = params.get('bucket') === 'hour' ? 'hour' : 'day';
    const evals = ms.el('select', { name: 'evals', 'data-test': 'filter-evals' },
      ms.el('option', { value: '' }, 'exclude'), ms.el('option', { value: 'include' }, 'include'),
      ms.el('option', { value: 'only' }, 'only'));
    evals.value = params.get('evals') || '';
    const form = ms.el('form', { class: 'filters', 'data-test': 'report-filters' },
      field('name', 'name (glob)', { placeholder: 'answer_*' }),
      field('since', 'since', { class: 'short', placeholder: '7d' }),
      field('until', 'until', { class: 'short', placeholder: '1d' }),
      field('run', 'run', { class: 'short' }),
      field('eval_run', 'eval run', { class: 'short' }), // the eval page links here with it
      field('user', 'user', { class: 'short' }),
      field('session', 'session', { class: 'short' }),
      field('tag', 'tags', { class: 'short', placeholder: 'beta, eu' }),
      field('attr', 'attr k=v', { class: 'short' }),
      ms.el('label', null, 'evals', evals),
      ms.el('label', null, 'bucket', bucket),
      ms.el('button', { type: 'submit', 'data-test': 'filter-apply' }, 'Apply'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const q = {};
      new FormData(form).forEach((v, k) => {
        if (k === 'tag') v = v.split(',').map((x) => x.trim()).filter(Boolean);
        if (v.length) q[k] = v;
      });
      ms.go('/report', q);
    });
    return form;
  }

  // A headline number with its exact value in data-value.
  function kpi(test, label, value, shown) {
    return ms.el('div', { class: 'kpi', 'data-test': 'kpi-' + test, 'data-value': value === null || value === undefined ? '' : value },
      ms.el('div', { class: 'kpi-label' }, label), ms.el('div', { class: 'kpi-value' }, shown));
  }

  // One line per request name of `key` in each bucket.
  function perName(buckets, key) {
    const names = new Map();
    buckets.forEach((b) => b.names.forEach((n) => {
      if (!names.has(n.name)) names.set(n.name, []);
      names.get(n.name).push({ x: t(b), y: typeof key === 'function' ? key(n) : n[key], label: b.start });
    }));
    return [...names.entries()].map(([name, points]) => ({ name, points }));
  }

  function render(r, el, params) {
    const s = r.series.buckets;
    const req = r.requests;
    const by = r.series.bucket;
    el.appendChild(ms.el('p', { class: 'note', 'data-test': 'report-window' },
      `${r.window.description} · ${ms.fmt.tokens(req.count)} requests` +
      (r.window.evals_left_out ? ` · ${r.window.evals_left_out} eval traces left out (evals: include to count them)` : '')));
    if (!req.count) {
      el.appendChild(ms.el('p', { class: 'note', 'data-test': 'report-empty' }, 'No trace matches this selection.'));
      return;
    }
    const lat = req.latency_ms;
    el.appendChild(ms.el('div', { class: 'kpis' },
      kpi('requests', 'requests', req.count, ms.fmt.tokens(req.count)),
      kpi('p50', 'latency p50', lat.p50, ms_(lat.p50)),
      kpi('p95', 'latency p95', lat.p95, ms_(lat.p95)),
      kpi('p99', 'latency p99', lat.p99, ms_(lat.p99)),
      kpi('error-rate', 'error rate', r.errors.rate, pct(r.errors.rate)),
      kpi('tokens', 'tokens / request', r.tokens.avg_total, r.tokens.avg_total === null ? '–' : r.tokens.avg_total.toFixed(1)),
      kpi('cost', 'cost / request', r.cost.avg_usd_per_request, ms.fmt.usd(r.cost.avg_usd_per_request)),
      kpi('cost-total', 'cost', r.cost.total_usd, ms.fmt.usd(r.cost.total_usd)),
      kpi('retry', 'retry success', r.retries.success_rate,
        r.retries.retried_calls ? `${pct(r.retries.success_rate)} of ${r.retries.retried_calls}` : 'no retries')));
    if (r.cost.unknown_cost_calls)
      el.appendChild(ms.el('p', { class: 'note' }, `${r.cost.unknown_cost_calls} LLM calls had no price: their cost is unknown, not counted as $0.`));

    el.appendChild(ms.el('h2', null, 'Latency'));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Requests: p50 / p95 / p99 per ${by}`, test: 'chart-latency', yFormat: ms_,
      series: ['p50', 'p95', 'p99'].map((q) => ({ name: q, points: s.map((b) => ({ x: t(b), y: b[q + '_ms'], label: b.start })) })),
    }));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `p95 per request name, per ${by}`, test: 'chart-latency-names', yFormat: ms_, series: perName(s, 'p95_ms'),
    }));
    // the heaviest steps of the window, followed bucket by bucket
    const top = r.steps.slice(0, 6).map((st) => (st.path ? st.path.join('/') : st.name));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Steps: p95 per ${by} (the ${top.length} heaviest)`, test: 'chart-steps', yFormat: ms_,
      series: top.map((label) => ({
        name: label,
        points: s.map((b) => { const row = b.steps.find((x) => x.label === label); return { x: t(b), y: row ? row.p95_ms : null, label: b.start }; }),
      })),
    }));
    const slow = r.steps.slice().sort((a, b) => (b.p95_ms || 0) - (a.p95_ms || 0));
    el.appendChild(ms.chart.bar({
      title: 'Slowest steps (p95)', test: 'chart-slowest', format: ms_,
      bars: slow.map((st) => ({ label: st.path ? st.path.join('/') : st.name, value: st.p95_ms,
        note: `${st.count} spans, p50 ${ms_(st.p50_ms)}, p99 ${ms_(st.p99_ms)}${st.approximate ? ' (approximate)' : ''}` })),
    }));
    const stepRows = r.steps.slice(0, 30).map((st) => ms.el('tr', { 'data-test': 'step-row' },
      ms.el('td', { class: 'name' }, st.path ? st.path.join(' / ') : st.name),
      ms.el('td', { class: 'num' }, ms.fmt.tokens(st.count)),
      ms.el('td', { class: 'num' }, ms_(st.p50_ms)), ms.el('td', { class: 'num', 'data-test': 'step-p95', 'data-value': st.p95_ms }, ms_(st.p95_ms)),
      ms.el('td', { class: 'num' }, ms_(st.p99_ms)), ms.el('td', { class: 'num' }, pct(st.share)),
      ms.el('td', { class: 'num' }, ms.fmt.tokens(st.input_tokens + st.output_tokens)),
      ms.el('td', { class: 'num' }, ms.fmt.usd(st.cost_usd))));
    el.appendChild(ms.el('table', { class: 'grid', 'data-test': 'steps-table' },
      ms.el('thead', null, ms.el('tr', null, ['step', 'spans', 'p50', 'p95', 'p99', 'share of time', 'tokens', 'cost']
        .map((h, i) => ms.el('th', { class: i ? 'num' : null }, h)))),
      ms.el('tbody', null, stepRows)));
    if (r.steps.length > 30) el.appendChild(ms.el('p', { class: 'note' }, `${r.steps.length - 30} more steps: moonspan report --steps all`));

    el.appendChild(ms.el('h2', null, 'Tokens and cost'));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Tokens per request, per ${by}, by request name`, test: 'chart-tokens', yFormat: (v) => ms.fmt.tokens(Math.round(v)),
      series: perName(s, (n) => (n.requests ? (n.input_tokens + n.output_tokens) / n.requests : null)),
    }));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Cost per request, per ${by}, by request name`, test: 'chart-cost', yFormat: ms.fmt.usd,
      series: perName(s, 'avg_usd_per_request'),
    }));
    el.appendChild(ms.chart.bar({
      title: 'Cost per day (live spend)', test: 'chart-cost-trend', format: ms.fmt.usd,
      bars: r.cost_trend.slice().reverse().map((d) => ({ label: d.period, value: d.cost_usd,
        note: `${d.requests} requests, ${ms.fmt.usd(d.avg_usd_per_request)} each` })),
    }));

    el.appendChild(ms.el('h2', null, 'Errors and retries'));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Error rate per ${by}`, test: 'chart-errors', yFormat: pct,
      series: [{ name: 'all requests', points: s.map((b) => ({ x: t(b), y: b.error_rate, label: b.start })) }]
        .concat(perName(s, 'error_rate').length > 1 ? perName(s, 'error_rate') : []),
    }));
    el.appendChild(ms.el('table', { class: 'grid', 'data-test': 'top-errors' },
      ms.el('thead', null, ms.el('tr', null, ms.el('th', null, 'type'), ms.el('th', null, 'message'), ms.el('th', { class: 'num' }, 'count'))),
      ms.el('tbody', null, r.errors.top.length ? r.errors.top.map((e) => ms.el('tr', { 'data-test': 'error-row' },
        ms.el('td', null, e.type), ms.el('td', { class: 'name' }, e.message), ms.el('td', { class: 'num' }, String(e.count))))
        : ms.el('tr', null, ms.el('td', { colspan: 3, class: 'note' }, 'No errors.')))));
    el.appendChild(ms.chart.line({
      bucket: by,
      title: `Retry success rate per ${by} (calls that retried and then succeeded)`, test: 'chart-retries', yFormat: pct,
      series: [{ name: 'retry success', points: s.map((b) => ({ x: t(b), y: b.retry_success_rate, label: b.start })) }],
    }));
  }

  ms.page('/report', async (params, el) => {
    el.appendChild(ms.el('h1', null, 'Checklist'));
    el.appendChild(filterForm(params));
    const body = ms.el('div', { 'data-test': 'report-body' });
    el.appendChild(body);
    const q = {};
    SELECTION.concat(['bucket']).forEach((k) => { const v = params.getAll(k); if (v.length) q[k] = v; });
    const load = async () => {
      const r = await ms.api('/api/report', q);
      const fresh = ms.el('div', { 'data-test': 'report-loaded' });
      render(r, fresh, params);
      body.replaceChildren(fresh);
    };
    await load();
    ms.onChange(ms.chart.coalesce(load));
  });
})();
