// page_traces.js — #/traces: the stored traces, filtered, sorted and paged
// (GET /api/traces). The filters live in the hash (#/traces?user=bob&sort=cost),
// so a view is a link; the list follows new traces while a run writes.
'use strict';

(function () {
  // The filter fields: [parameter, label, placeholder, input class]
  const FIELDS = [
    ['name', 'Name', 'answer_*', ''],
    ['since', 'Since', '24h or 2026-11-01', 'short'],
    ['until', 'Until', '1h or 2026-11-02', 'short'],
    ['run', 'Run', 'id', 'short'],
    ['session', 'Session', 's1', 'short'],
    ['user', 'User', 'u7', 'short'],
    ['tag', 'Tags', 'beta, eu', 'short'],
    ['attr', 'Attribute', 'key=value', ''],
  ];
  const SELECTION = ['name', 'since', 'until', 'run', 'eval_run', 'session', 'user', 'tag', 'attr', 'status',
    'evals', 'errors'];
  const PAGE = 50;

  // The API's query from the hash's: repeatable ones (tag, attr) as arrays.
  function apiParams(params) {
    const q = {};
    for (const k of SELECTION) {
      const all = params.getAll(k).filter((v) => v !== '');
      if (all.length) q[k] = k === 'tag' || k === 'attr' ? all : all[all.length - 1];
    }
    q.sort = params.get('sort') || 'start';
    q.limit = PAGE;
    q.offset = Number(params.get('offset')) || 0;
    return q;
  }

  function filterForm(params) {
    const inputs = {};
    const field = ([key, label, hint, cls]) => {
      const value = key === 'tag' ? params.getAll('tag').join(', ') : (params.get(key) || '');
      inputs[key] = ms.el('input', { name: key, placeholder: hint, class: cls || null, 'data-test': 'filter-' + key });
      inputs[key].value = value;
      return ms.el('label', null, label, inputs[key]);
    };
    const select = (key, label, options) => {
      inputs[key] = ms.el('select', { name: key, 'data-test': 'filter-' + key },
        options.map(([v, text]) => ms.el('option', { value: v }, text)));
      inputs[key].value = params.get(key) || '';
      return ms.el('label', null, label, inputs[key]);
    };
    const form = ms.el('form', { class: 'filters', 'data-test': 'filters' },
      FIELDS.map(field),
      select('status', 'Status', [['', 'any'], ['ok', 'ok'], ['error', 'error'], ['interrupted', 'interrupted'],
        ['incomplete', 'incomplete']]),
      select('evals', 'Eval traces', [['', 'left out'], ['include', 'included'], ['only', 'only']]),
      ms.el('button', { type: 'submit', 'data-test': 'filter-apply' }, 'Apply'),
      ms.el('button', { type: 'button', 'data-test': 'filter-clear', onclick: () => ms.go('/traces') }, 'Clear'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const next = { sort: params.get('sort') || undefined };
      for (const [key, input] of Object.entries(inputs)) {
        const v = input.value.trim();
        if (!v) continue;
        next[key] = key === 'tag' ? v.split(',').map((t) => t.trim()).filter(Boolean) : v;
      }
      if (params.get('eval_run')) next.eval_run = params.get('eval_run');
      ms.go('/traces', next);
    });
    return form;
  }

  // The hash with one parameter changed (sort, offset), the rest kept.
  function withParam(params, key, value) {
    const q = new URLSearchParams(params.toString());
    if (value === null || value === undefined || value === '') q.delete(key);
    else q.set(key, String(value));
    if (key !== 'offset') q.delete('offset');
    const s = q.toString();
    return '#/traces' + (s ? '?' + s : '');
  }

  function statusCell(status) {
    const cls = status === 'ok' ? 'status-ok' : status === 'error' ? 'status-error' : 'status-other';
    return ms.el('td', { class: cls, 'data-test': 'status' }, status);
  }

  function table(params, reply) {
    const sort = params.get('sort') || 'start';
    const head = (label, key, cls) => {
      if (!key) return ms.el('th', { class: cls || null }, label);
      const active = sort === key;
      return ms.el('th', { class: ['sortable', cls, active ? 'sorted' : null].filter(Boolean).join(' '),
        'data-test': 'sort-' + key, onclick: () => { window.location.hash = withParam(params, 'sort', key); } },
      label + (active ? ' ▾' : ''));
    };
    const rows = reply.traces.map((t) => ms.el('tr', { 'data-test': 'trace-row', 'data-trace-id': t.trace_id },
      ms.el('td', { class: 'name' },
        ms.el('a', { href: '#/trace/' + encodeURIComponent(t.trace_id), 'data-test': 'trace-link', class: 'clamp',
          title: t.name }, t.name)),
      ms.el('td', { class: 'nowrap', 'data-test': 'start', title: t.start }, ms.fmt.time(t.start)),
      ms.el('td', { class: 'num', 'data-test': 'duration' }, ms.fmt.ms(t.duration_ms)),
      statusCell(t.status),
      ms.el('td', { class: 'num', 'data-test': 'spans' }, ms.fmt.tokens(t.span_count)),
      ms.el('td', { class: 'num', 'data-test': 'tokens' },
        ms.fmt.tokens(t.input_tokens) + ' / ' + ms.fmt.tokens(t.output_tokens)),
      ms.el('td', { class: 'num', 'data-test': 'cost' },
        (t.unknown_cost_calls > 0 && t.cost_usd !== null ? '≥' : '') + ms.fmt.usd(t.cost_usd)),
      ms.el('td', { class: 'text', 'data-test': 'user' }, t.user === null ? '–' : t.user),
      ms.el('td', { class: 'text', 'data-test': 'session' }, t.session === null ? '–' : t.session),
      ms.el('td', { class: 'text', 'data-test': 'tags' }, (t.tags || []).map((g) => ms.el('span', { class: 'tag' }, g))),
      ms.el('td', { class: 'num', 'data-test': 'run' }, t.run_id === null ? '–' : String(t.run_id))));
    return ms.el('table', { class: 'grid', 'data-test': 'traces-table' },
      ms.el('thead', null, ms.el('tr', null,
        head('Trace'), head('Start', 'start'), head('Duration', 'duration', 'num'), head('Status'),
        head('Spans', null, 'num'), head('Tokens in / out', null, 'num'), head('Cost', 'cost', 'num'),
        head('User'), head('Session'), head('Tags'), head('Run', null, 'num'))),
      ms.el('tbody', null, rows));
  }

  function pager(params, reply, offset) {
    const n = reply.traces.length;
    const shown = n ? `${ms.fmt.tokens(offset + 1)}–${ms.fmt.tokens(offset + n)} of ${ms.fmt.tokens(reply.total)}`
      : `0 of ${ms.fmt.tokens(reply.total)}`;
    const go = (o) => () => { window.location.hash = withParam(params, 'offset', o > 0 ? o : null); };
    return ms.el('div', { class: 'pager' },
      ms.el('button', { 'data-test': 'page-prev', disabled: offset <= 0, onclick: go(offset - PAGE) }, '← Newer'),
      ms.el('span', { 'data-test': 'traces-total' }, shown),
      ms.el('button', { 'data-test': 'page-next', disabled: offset + n >= reply.total, onclick: go(offset + PAGE) },
        'Older →'));
  }

  async function fill(params, box) {
    const q = apiParams(params);
    let reply;
    try {
      reply = await ms.api('/api/traces', q);
    } catch (e) {
      box.replaceChildren(ms.el('p', { class: 'error', 'data-test': 'traces-error' }, e.message));
      return;
    }
    const parts = [pager(params, reply, q.offset)];
    if (reply.total === 0)
      parts.push(ms.el('p', { class: 'note', 'data-test': 'traces-empty' }, ms.meta && ms.meta.traces === 0
        ? 'No traces recorded yet: run a pipeline with `moonspan run`.'
        : 'No traces match these filters.'));
    else
      parts.push(table(params, reply));
    if (reply.eval_traces_left_out > 0)
      parts.push(ms.el('p', { class: 'note', 'data-test': 'evals-left-out' },
        `${ms.fmt.tokens(reply.eval_traces_left_out)} eval trace${reply.eval_traces_left_out === 1 ? '' : 's'}` +
        ' left out (Eval traces: included lists them too).'));
    box.replaceChildren(...parts);
  }

  ms.page('/traces', async (params, el) => {
    const box = ms.el('div', { 'data-test': 'traces' });
    el.append(ms.el('h1', null, 'Traces'), filterForm(params), box);
    await fill(params, box);
    ms.onChange(() => fill(params, box));
  });
})();
