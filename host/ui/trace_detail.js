// trace_detail.js — the panel of the trace page (page_trace.js) that shows
// one span: its timing, tokens, cost, time to first token and retries; a
// fold's repetitions; its error with the traceback; the prompt and answer
// captured on an LLM call; its other attributes and its events.
//
//   ms.spanDetail(span, parent, zoomTo) -> an array of nodes for the panel;
//   span as /api/trace gives it (null: none chosen), parent its parent span
//   (or null), zoomTo(span) what the "Zoom to this span" button calls.
// Fields that are missing (null) are left out rather than shown as 0; every
// text from the store goes in through ms.el / textContent.
'use strict';

(function () {
  const CONTENT_KEYS = ['gen_ai.system_instructions', 'gen_ai.input.messages', 'gen_ai.output.messages'];
  const cssToken = (x) => String(x || 'unknown').replace(/[^a-z0-9_-]/gi, '');
  const fmtOffset = (x) => (x < 0 ? '-' + ms.fmt.ms(-x) : '+' + ms.fmt.ms(x));

  function jsonText(v) {
    if (v === undefined) return '–';
    if (typeof v === 'string') return v;
    return JSON.stringify(v);
  }

  // A field row of the detail panel, or nothing when the value is missing.
  function field(key, label, value) {
    if (value === undefined || value === null || value === '') return null;
    return ms.el('tr', { 'data-test': 'detail-field', 'data-key': key },
      ms.el('th', { text: label }), ms.el('td', { text: value }));
  }

  // A captured message list (the GenAI conventions' shape) as role + text
  // blocks; a text that is not that shape is shown as it is.
  function messages(title, key, raw) {
    let list = null;
    try { list = JSON.parse(raw); } catch (e) { list = null; }
    const box = ms.el('div', { class: 'msgs', 'data-test': 'detail-content', 'data-key': key },
      ms.el('h4', { text: title }));
    if (!Array.isArray(list)) {
      box.appendChild(ms.el('pre', { text: String(raw) }));
      return box;
    }
    for (const m of list) {
      const parts = (m && Array.isArray(m.parts)) ? m.parts : [m];
      const body = parts.map((p) => {
        if (p && p.type === 'text' && typeof p.content === 'string') return p.content;
        return jsonText(p);
      }).join('\n');
      box.appendChild(ms.el('div', { class: 'msg' },
        ms.el('span', { class: 'role', text: (m && m.role) || '' }),
        m && m.finish_reason ? ms.el('span', { class: 'finish', text: 'finish: ' + m.finish_reason }) : null,
        ms.el('pre', { text: body })));
    }
    return box;
  }

  ms.spanDetail = function (s, parent, zoomTo) {
    if (!s)
      return [ms.el('p', { class: 'note', text: 'Click a span to see its attributes, events, error, tokens and cost.' })];
    const hasLlm = 'input_tokens' in s;
    const retried = s.retries > 0;
    const rows = [
      field('span_id', 'span id', s.span_id),
      field('parent', 'parent', parent ? parent.name + ' (' + parent.span_id + ')' : s.parent_id),
      field('kind', 'kind', s.kind),
      field('status', 'status', s.status),
      field('offset', 'starts at', fmtOffset(s.offset_ms) + ' from the trace\'s start'),
      field('duration', 'duration', ms.fmt.ms(s.duration_ms)),
      hasLlm ? field('provider', 'provider', s.provider) : null,
      hasLlm ? field('model', 'model', s.model) : null,
      hasLlm ? field('input_tokens', 'input tokens', ms.fmt.tokens(s.input_tokens) + (s.usage_estimated ? ' (estimated)' : '')) : null,
      hasLlm ? field('output_tokens', 'output tokens', ms.fmt.tokens(s.output_tokens) + (s.usage_estimated ? ' (estimated)' : '')) : null,
      hasLlm && s.cache_read_tokens ? field('cache_read_tokens', 'cache read tokens', ms.fmt.tokens(s.cache_read_tokens)) : null,
      hasLlm && s.cache_write_tokens ? field('cache_write_tokens', 'cache write tokens', ms.fmt.tokens(s.cache_write_tokens)) : null,
      hasLlm || s.cost_usd !== null ? field('cost', 'cost', s.cost_usd === null ? 'unknown (no price for this model)' : ms.fmt.usd(s.cost_usd)) : null,
      field('ttft', 'time to first token', s.ttft_ms === null ? null : ms.fmt.ms(s.ttft_ms)),
      retried ? field('retries', 'retries', s.retries + (s.retry_succeeded === true ? ' (succeeded)' : s.retry_succeeded === false ? ' (failed)' : '')) : null,
      field('backoff', 'waited between retries', s.backoff_ms === null || s.backoff_ms === undefined ? null : ms.fmt.ms(s.backoff_ms)),
      s.replayed ? field('replayed', 'replayed', 'answered from a recording') : null,
    ];
    const fold = s.fold ? ms.el('table', { class: 'fields', 'data-test': 'detail-fold' },
      ms.el('caption', { text: 'folded: ' + ms.fmt.tokens(s.fold.count) + ' repetitions in one record' }),
      field('fold_count', 'repetitions', ms.fmt.tokens(s.fold.count)),
      field('fold_errors', 'of them failed', ms.fmt.tokens(s.fold.errors)),
      field('fold_total', 'total', ms.fmt.ms(s.fold.total_ms)),
      field('fold_min', 'min', ms.fmt.ms(s.fold.min_ms)),
      field('fold_p50', 'p50', ms.fmt.ms(s.fold.p50_ms)),
      field('fold_p95', 'p95', ms.fmt.ms(s.fold.p95_ms)),
      field('fold_max', 'max', ms.fmt.ms(s.fold.max_ms))) : null;
    const error = s.error ? ms.el('div', { class: 'detail-error', 'data-test': 'detail-error' },
      ms.el('h4', { text: 'error' }),
      ms.el('div', {}, ms.el('b', { 'data-test': 'detail-error-type', text: s.error.type || '' }), ': ',
        ms.el('span', { 'data-test': 'detail-error-message', text: s.error.message || '' })),
      s.error.traceback ? ms.el('pre', { class: 'traceback', 'data-test': 'detail-traceback', text: s.error.traceback }) : null) : null;
    const attrs = s.attrs && typeof s.attrs === 'object' ? s.attrs : {};
    const content = CONTENT_KEYS.filter((k) => typeof attrs[k] === 'string').map((k) =>
      messages(k === 'gen_ai.output.messages' ? 'output' : k === 'gen_ai.input.messages' ? 'input' : 'system', k, attrs[k]));
    const akeys = Object.keys(attrs).filter((k) => !CONTENT_KEYS.includes(k)).sort();
    const attrTable = ms.el('table', { class: 'fields attrs', 'data-test': 'detail-attrs' },
      ms.el('caption', { text: 'attributes' + (akeys.length ? '' : ': none') }),
      akeys.map((k) => ms.el('tr', { 'data-test': 'detail-attr', 'data-key': k },
        ms.el('th', { text: k }), ms.el('td', { text: jsonText(attrs[k]) }))));
    const events = ms.el('div', { class: 'events', 'data-test': 'detail-events' },
      ms.el('h4', { text: 'events' + ((s.events || []).length ? '' : ': none') }),
      (s.events || []).map((e) => ms.el('div', { class: 'event' + (e.error_type ? ' err' : ''), 'data-test': 'detail-event' },
        ms.el('span', { class: 'at', text: fmtOffset(e.offset_ms) }), ' ',
        ms.el('b', { text: e.name }),
        e.error_type ? [' ', ms.el('span', { class: 'err-text', text: e.error_type + ': ' + e.error_message })] : null,
        e.attrs !== null && e.attrs !== undefined ? ms.el('code', { text: jsonText(e.attrs) }) : null)));
    const zoom = ms.el('button', { type: 'button', 'data-test': 'zoom-span', text: 'Zoom to this span',
      onclick: () => zoomTo(s) });
    // replaceChildren would turn a null into the text "null": leave them out
    return [
      ms.el('h3', {}, ms.el('span', { class: 'kind k-' + cssToken(s.kind), text: s.kind }), ' ',
        ms.el('span', { 'data-test': 'detail-name', text: s.name })),
      zoom,
      ms.el('table', { class: 'fields' }, rows),
      fold, error, ...content, attrTable, events].filter(Boolean);
  };
})();
