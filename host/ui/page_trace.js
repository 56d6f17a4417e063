// page_trace.js — one trace (#/trace/ID[?pick=N]): a waterfall of its spans
// at their real offsets and durations, and the detail of the span clicked.
//
// What the tests rely on (tests/ui/trace.test.mjs):
// - [data-test=waterfall] carries data-view-start-ms / data-view-end-ms (the
//   time range shown, ms from the trace's start), data-track-width (px),
//   data-rows (rows not hidden by a collapsed parent) and data-render-ms (the
//   time the first drawing took, measured with performance.now()).
// - A bar's left edge sits at (offset_ms - view start) * track width / (view
//   end - view start) px from its track's left edge, its width is duration_ms
//   scaled the same way (at least 1 px), as /api/trace gives them.
// - Only the rows in (or near) the scrolled viewport are in the DOM, so a
//   20,000-span trace draws as fast as a small one.
// The panel of the span clicked is drawn by trace_detail.js (ms.spanDetail).
// Every text from the store goes in through ms.el / textContent.
'use strict';

(function () {
  const ROW_H = 22;        // px per row; the CSS's .wf-row height agrees
  const OVERSCAN = 12;     // rows drawn above and below the viewport
  const MIN_ZOOM_MS = 1e-4; // 100 ns: below it, nothing more to see
  const INDENT = 14;       // px per depth level
  const MAX_EVENT_MARKS = 50; // ticks on one bar; the detail lists them all

  // --- the tree, flattened ----------------------------------------------------

  // Rows in depth-first order: each {s, depth, parent, end}, `end` the index
  // after its last descendant (so a collapsed row skips to it).
  function flatten(roots) {
    const rows = [];
    const stack = [];
    for (let i = roots.length - 1; i >= 0; i--) stack.push([roots[i], 0, -1]);
    while (stack.length) {
      const [s, depth, parent] = stack.pop();
      const me = rows.length;
      rows.push({ s, depth, parent, end: 0 });
      const kids = s.children || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1, me]);
    }
    const size = new Array(rows.length).fill(1);
    for (let i = rows.length - 1; i > 0; i--) size[rows[i].parent] += size[i];
    rows.forEach((r, i) => { r.end = i + size[i]; });
    return rows;
  }

  // The indices of the rows no collapsed ancestor hides.
  function visibleRows(rows, collapsed) {
    const out = [];
    for (let i = 0; i < rows.length;) {
      out.push(i);
      i = collapsed.has(rows[i].s.span_id) ? rows[i].end : i + 1;
    }
    return out;
  }

  // The time the trace covers, ms from its start: children may outlast a
  // root cut short, and imported spans may start before it.
  function extent(rows, trace) {
    let lo = 0, hi = trace.duration_ms || 0;
    for (const r of rows) {
      lo = Math.min(lo, r.s.offset_ms);
      hi = Math.max(hi, r.s.offset_ms + r.s.duration_ms);
    }
    return [lo, hi > lo ? hi : lo + 1];
  }

  // Tick positions for [a, b]: steps of 1, 2 or 5 × 10^k, about `n` of them.
  function ticks(a, b, n) {
    const raw = (b - a) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw) || 10 * mag;
    const out = [];
    for (let t = Math.ceil(a / step) * step; t <= b + step * 1e-9; t += step) out.push(t);
    return out;
  }

  // --- small display helpers ----------------------------------------------------

  const cssToken = (x) => String(x || 'unknown').replace(/[^a-z0-9_-]/gi, '');
  const fmtOffset = (x) => (x < 0 ? '-' + ms.fmt.ms(-x) : '+' + ms.fmt.ms(x));
  const isErr = (s) => s.status === 'error' || !!s.error || (s.fold && s.fold.errors > 0);

  // --- the page ------------------------------------------------------------------

  // While the store changes, the page asks again only for what can change:
  // a trace still open (stored in parts, `incomplete`), or one not there
  // yet (a link opened before its run ended). A trace that ended never
  // changes, so its (perhaps large) reply is not fetched again.
  ms.page('/trace', async function (params, el) {
    const id = params.rest;
    const pick = params.get('pick') || undefined;
    let view = null;
    const fetchAndDraw = async () => {
      let trace;
      try {
        trace = await ms.api('/api/trace', { id, pick });
      } catch (e) {
        if (view) return; // the trace stays as drawn
        const list = e.body && e.body.matches;
        // replaceChildren would turn a null into the text "null": only nodes go in
        el.replaceChildren(...[ms.el('p', { class: 'error', 'data-test': 'trace-error' }, e.message),
          Array.isArray(list) ? matchList(id, list) : null,
          ms.el('p', null, ms.el('a', { href: '#/traces', 'data-test': 'trace-back' }, '← all traces'))].filter(Boolean));
        return;
      }
      if (!view) view = new TraceView(el, id, pick);
      view.load(trace);
    };
    await fetchAndDraw();
    ms.onChange(() => (!view || view.trace.status === 'incomplete' ? fetchAndDraw() : undefined));
  });

  // Several traces match the id: each with the link that picks it.
  function matchList(id, list) {
    return ms.el('table', { class: 'matches', 'data-test': 'trace-matches' },
      ms.el('tr', {}, ['#', 'trace id', 'name', 'start', 'duration', 'status'].map((h) => ms.el('th', { text: h }))),
      list.map((m) => ms.el('tr', {},
        ms.el('td', {}, ms.el('a', { href: '#/trace/' + encodeURIComponent(id) + '?pick=' + Number(m.pick), text: String(m.pick) })),
        ms.el('td', { text: m.trace_id }), ms.el('td', { text: m.name }),
        ms.el('td', { text: ms.fmt.time(m.start) }), ms.el('td', { text: ms.fmt.ms(m.duration_ms) }),
        ms.el('td', { text: m.status }))));
  }

  // The trace on screen, which a resize of the window lays out again.
  let shown = null;
  window.addEventListener('resize', () => {
    if (shown && document.body.contains(shown.wf)) shown.relayout();
  });

  function TraceView(el, id, pick) {
    this.el = el;
    this.id = id;
    this.pick = pick;
    this.collapsed = new Set();
    this.selected = null;   // span_id
    this.view = null;       // [start, end] ms, null: the whole trace
  }

  // Draws (or redraws, keeping what the user chose) the trace.
  TraceView.prototype.load = function (trace) {
    const t0 = performance.now();
    this.trace = trace;
    this.rows = flatten(trace.spans || []);
    this.byId = new Map();
    this.rows.forEach((r, i) => this.byId.set(r.s.span_id, i));
    this.full = extent(this.rows, trace);
    if (this.selected && !this.byId.has(this.selected)) this.selected = null;
    const top = this.scroll ? this.scroll.scrollTop : 0; // a redraw keeps the place
    this.build();
    this.visible = visibleRows(this.rows, this.collapsed);
    this.layout();
    if (top) {
      this.scroll.scrollTop = top;
      this.draw();
    }
    this.detail();
    const t1 = performance.now();
    this.wf.setAttribute('data-render-ms', (t1 - t0).toFixed(1));
  };

  TraceView.prototype.build = function () {
    const tr = this.trace;
    const head = ms.el('section', { class: 'trace-head', 'data-test': 'trace-head' },
      ms.el('h2', {}, ms.el('span', { 'data-test': 'trace-name', text: tr.name }),
        ms.el('span', { class: 'status s-' + cssToken(tr.status), 'data-test': 'trace-status', text: tr.status })),
      ms.el('div', { class: 'kv' },
        kv('trace', tr.trace_id), kv('start', ms.fmt.time(tr.start)), kv('duration', ms.fmt.ms(tr.duration_ms)),
        kv('spans', ms.fmt.tokens(tr.span_count)), kv('errors', ms.fmt.tokens(tr.error_count)),
        kv('tokens', ms.fmt.tokens(tr.input_tokens) + ' in / ' + ms.fmt.tokens(tr.output_tokens) + ' out'),
        kv('cost', !tr.unknown_cost_calls ? ms.fmt.usd(tr.cost_usd)
          : tr.cost_usd === null ? 'unknown' : '≥ ' + ms.fmt.usd(tr.cost_usd)), // some calls had no price
        tr.user ? kvLink('user', tr.user, { user: tr.user }) : null,
        tr.session ? kvLink('session', tr.session, { session: tr.session }) : null,
        Array.isArray(tr.tags) && tr.tags.length ? kv('tags', tr.tags.join(', ')) : null,
        tr.matching_traces > 1 ? kv('pick', tr.pick + ' of ' + tr.matching_traces) : null),
      tr.eval ? evalLine(tr.eval) : null);

    const reset = ms.el('button', { type: 'button', 'data-test': 'zoom-reset', text: 'Reset zoom',
      onclick: () => this.zoomTo(null) });
    const zin = ms.el('button', { type: 'button', 'data-test': 'zoom-in', text: 'Zoom in',
      onclick: () => this.zoomBy(0.5) });
    const zout = ms.el('button', { type: 'button', 'data-test': 'zoom-out', text: 'Zoom out',
      onclick: () => this.zoomBy(2) });
    const expand = ms.el('button', { type: 'button', 'data-test': 'expand-all', text: 'Expand all',
      onclick: () => { this.collapsed.clear(); this.relayout(); } });
    const collapse = ms.el('button', { type: 'button', 'data-test': 'collapse-all', text: 'Collapse all',
      onclick: () => {
        this.rows.forEach((r, i) => { if (r.end > i + 1 && r.depth > 0) this.collapsed.add(r.s.span_id); });
        this.relayout();
      } });
    this.rangeText = ms.el('span', { class: 'range', 'data-test': 'zoom-range' });
    const tools = ms.el('div', { class: 'wf-tools' }, zin, zout, reset, expand, collapse, this.rangeText,
      ms.el('span', { class: 'hint', text: 'drag across the axis or the bars to zoom; arrow keys move' }));

    this.axis = ms.el('div', { class: 'wf-axis', 'data-test': 'wf-axis' });
    this.brush = ms.el('div', { class: 'wf-brush' });
    const axisRow = ms.el('div', { class: 'wf-axis-row' }, ms.el('div', { class: 'wf-label-head', text: 'span' }), this.axis);
    this.spacer = ms.el('div', { class: 'wf-spacer' });
    this.scroll = ms.el('div', { class: 'wf-scroll', 'data-test': 'wf-scroll', tabindex: '0',
      'aria-label': 'spans: arrow keys move and fold' }, this.spacer);
    this.wf = ms.el('div', { class: 'wf', 'data-test': 'waterfall' }, tools, axisRow, this.scroll, this.brush);
    this.panel = ms.el('aside', { class: 'span-detail', 'data-test': 'span-detail' });
    const body = ms.el('div', { class: 'trace-body' }, this.wf, this.panel);
    this.el.replaceChildren(head, body);

    this.scroll.addEventListener('scroll', () => this.schedule());
    this.spacer.addEventListener('click', (ev) => this.click(ev));
    this.scroll.addEventListener('keydown', (ev) => this.key(ev));
    this.brushing(this.axis);
    this.brushing(this.spacer);
    shown = this;
  };

  function kv(k, v) {
    return ms.el('span', { class: 'kv-item', 'data-test': 'trace-' + k }, ms.el('b', { text: k }), ' ', String(v));
  }
  function kvLink(k, v, q) {
    const href = '#/traces?' + new URLSearchParams(q).toString();
    return ms.el('span', { class: 'kv-item', 'data-test': 'trace-' + k }, ms.el('b', { text: k }), ' ',
      ms.el('a', { href, text: v }));
  }
  function evalLine(e) {
    return ms.el('div', { class: 'eval-line ' + (e.pass ? 'pass' : 'fail'), 'data-test': 'trace-eval' },
      'eval case ', ms.el('b', { text: e.pass ? 'passed' : 'FAILED' }),
      ': suite ', String(e.suite), ', case ', String(e.case_id), ', repeat ', String(e.repeat_index), ', ',
      ms.el('a', { href: '#/eval/' + Number(e.eval_run), text: 'eval run ' + Number(e.eval_run) }));
  }

  // --- zoom ---------------------------------------------------------------------

  TraceView.prototype.range = function () {
    return this.view || this.full;
  };

  TraceView.prototype.zoomTo = function (r) {
    if (r) {
      let [a, b] = r;
      if (b - a < MIN_ZOOM_MS) {
        const m = (a + b) / 2;
        a = m - MIN_ZOOM_MS / 2;
        b = m + MIN_ZOOM_MS / 2;
      }
      r = [a, b];
    }
    this.view = r;
    this.layout();
  };

  TraceView.prototype.zoomBy = function (f) {
    const [a, b] = this.range();
    const m = (a + b) / 2, h = (b - a) * f / 2;
    const [lo, hi] = this.full;
    if (f > 1 && h * 2 >= hi - lo) return this.zoomTo(null);
    this.zoomTo([m - h, m + h]);
  };

  // Dragging across el selects a time range, zoomed to on release; a
  // click (no drag) is left to the row's click handler.
  TraceView.prototype.brushing = function (el) {
    el.addEventListener('mousedown', (ev) => {
      if (ev.button !== 0 || ev.target.closest('.wf-toggle')) return;
      const box = this.axis.getBoundingClientRect();
      if (ev.clientX < box.left || ev.clientX > box.right) return;
      const x0 = ev.clientX;
      const wfBox = this.wf.getBoundingClientRect();
      let moved = false;
      const move = (e) => {
        const x1 = Math.min(Math.max(e.clientX, box.left), box.right);
        if (Math.abs(x1 - x0) < 4) return;
        moved = true;
        this.brush.style.display = 'block';
        this.brush.style.left = (Math.min(x0, x1) - wfBox.left) + 'px';
        this.brush.style.width = Math.abs(x1 - x0) + 'px';
      };
      const up = (e) => {
        window.removeEventListener('mousemove', move);
        window.removeEventListener('mouseup', up);
        this.brush.style.display = 'none';
        if (!moved) return;
        // the click that ends a drag selects nothing (none comes when the
        // mouse was released outside the rows)
        this.suppressClick = true;
        setTimeout(() => { this.suppressClick = false; }, 0);
        const x1 = Math.min(Math.max(e.clientX, box.left), box.right);
        const [a, b] = this.range();
        const toMs = (x) => a + (x - box.left) / box.width * (b - a);
        this.zoomTo([toMs(Math.min(x0, x1)), toMs(Math.max(x0, x1))]);
      };
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
      ev.preventDefault();
    });
  };

  // --- drawing --------------------------------------------------------------------

  TraceView.prototype.relayout = function () {
    this.visible = visibleRows(this.rows, this.collapsed);
    this.layout();
  };

  // Axis, sizes and the rows in view.
  TraceView.prototype.layout = function () {
    const [a, b] = this.range();
    const width = this.axis.clientWidth || 1;
    this.width = width;
    this.scale = width / (b - a);
    this.wf.setAttribute('data-view-start-ms', String(a));
    this.wf.setAttribute('data-view-end-ms', String(b));
    this.wf.setAttribute('data-track-width', String(width));
    this.wf.setAttribute('data-rows', String(this.visible.length));
    this.wf.classList.toggle('zoomed', !!this.view);
    this.rangeText.textContent = this.view
      ? 'showing ' + fmtOffset(a) + ' to ' + fmtOffset(b) + ' of ' + ms.fmt.ms(this.full[1] - this.full[0])
      : 'whole trace, ' + ms.fmt.ms(b - a);
    const ticksEl = ticks(a, b, Math.max(2, Math.floor(width / 90))).map((t) =>
      ms.el('span', { class: 'tick', style: { left: ((t - a) * this.scale).toFixed(1) + 'px' },
        text: t === 0 ? '0' : fmtOffset(t) }));
    this.axis.replaceChildren(...ticksEl);
    this.spacer.style.height = (this.visible.length * ROW_H) + 'px';
    this.first = -1;
    this.draw();
  };

  TraceView.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  };

  // The rows in (and near) the viewport; the others are not in the DOM.
  TraceView.prototype.draw = function () {
    const top = this.scroll.scrollTop, h = this.scroll.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + h) / ROW_H) + OVERSCAN);
    if (first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const out = [];
    for (let k = first; k < last; k++) out.push(this.row(this.visible[k], k));
    this.spacer.replaceChildren(...out);
  };

  TraceView.prototype.row = function (i, k) {
    const r = this.rows[i], s = r.s;
    const [a] = this.range();
    const hasKids = r.end > i + 1;
    const folded = this.collapsed.has(s.span_id);
    const kind = cssToken(s.kind);
    const err = isErr(s);
    const x0 = (s.offset_ms - a) * this.scale;
    const w = Math.max(1, s.duration_ms * this.scale);
    // far outside the track a bar is cut, so a deep zoom keeps sane sizes
    const left = Math.max(x0, -this.width);
    const right = Math.min(x0 + w, 2 * this.width);
    const cls = 'wf-row k-' + kind + (err ? ' err' : '') + (s.status !== 'ok' ? ' s-' + cssToken(s.status) : '') +
      (this.selected === s.span_id ? ' selected' : '');
    const label = ms.el('div', { class: 'wf-label', style: { paddingLeft: (4 + r.depth * INDENT) + 'px' } },
      hasKids
        ? ms.el('button', { type: 'button', class: 'wf-toggle', 'data-test': 'wf-toggle',
            'aria-expanded': folded ? 'false' : 'true', text: folded ? '▸' : '▾',
            title: folded ? 'show the ' + (r.end - i - 1) + ' spans inside' : 'hide the spans inside' })
        : ms.el('span', { class: 'wf-toggle-gap' }),
      ms.el('span', { class: 'kind k-' + kind, text: s.kind }),
      err ? ms.el('span', { class: 'err-mark', 'data-test': 'wf-error', title: 'error', text: '!' }) : null,
      ms.el('span', { class: 'wf-name', 'data-test': 'wf-name', text: s.name }),
      s.fold ? ms.el('span', { class: 'fold-count', 'data-test': 'wf-fold', text: '×' + ms.fmt.tokens(s.fold.count) }) : null,
      folded ? ms.el('span', { class: 'hidden-count', text: '+' + (r.end - i - 1) }) : null);
    const barText = s.fold
      ? '×' + ms.fmt.tokens(s.fold.count) + ' · p50 ' + ms.fmt.ms(s.fold.p50_ms) + ' · max ' + ms.fmt.ms(s.fold.max_ms)
      : ms.fmt.ms(s.duration_ms);
    const bar = ms.el('div', { class: 'wf-bar k-' + kind + (err ? ' err' : ''), 'data-test': 'wf-bar',
      style: { left: left + 'px', width: Math.max(1, right - left) + 'px' } });
    const durLeft = right + 4 < this.width - 60 ? right + 4 : Math.max(0, left - 4);
    const dur = ms.el('span', { class: 'wf-dur' + (durLeft < right ? ' inside' : ''),
      style: durLeft < right ? { right: (this.width - left + 4) + 'px' } : { left: durLeft + 'px' }, text: barText });
    // time to first token and events, as ticks on the bar's line
    const at = (t) => ({ left: ((t - a) * this.scale).toFixed(2) + 'px' });
    const marks = [];
    if (typeof s.ttft_ms === 'number')
      marks.push(ms.el('div', { class: 'wf-ttft', 'data-test': 'wf-ttft', style: at(s.offset_ms + s.ttft_ms),
        title: 'first token after ' + ms.fmt.ms(s.ttft_ms) }));
    for (const e of (s.events || []).slice(0, MAX_EVENT_MARKS))
      marks.push(ms.el('div', { class: 'wf-evt' + (e.error_type ? ' err' : ''), 'data-test': 'wf-event',
        style: at(e.offset_ms), title: e.name + ' at ' + fmtOffset(e.offset_ms) }));
    return ms.el('div', { class: cls, 'data-test': 'wf-row', 'data-span-id': s.span_id, 'data-row': String(i),
      'data-offset-ms': String(s.offset_ms), 'data-duration-ms': String(s.duration_ms), 'data-kind': s.kind,
      'data-status': s.status, style: { top: (k * ROW_H) + 'px' } },
      label, ms.el('div', { class: 'wf-track' }, bar, marks, dur));
  };

  TraceView.prototype.click = function (ev) {
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    const rowEl = ev.target.closest('.wf-row');
    if (!rowEl) return;
    const i = Number(rowEl.getAttribute('data-row'));
    const s = this.rows[i].s;
    if (ev.target.closest('.wf-toggle')) {
      if (this.collapsed.has(s.span_id)) this.collapsed.delete(s.span_id);
      else this.collapsed.add(s.span_id);
      this.relayout();
      return;
    }
    this.select(i);
  };

  TraceView.prototype.select = function (i) {
    this.selected = this.rows[i].s.span_id;
    this.first = -1;
    this.draw();
    this.detail();
  };

  // Keys on the focused waterfall: ↑/↓ the previous/next row, ← hides the
  // selected span's children (or goes to its parent), → shows them.
  TraceView.prototype.key = function (ev) {
    if (!['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight'].includes(ev.key)) return;
    ev.preventDefault();
    const cur = this.selected ? this.byId.get(this.selected) : undefined;
    const k = cur === undefined ? -1 : this.visible.indexOf(cur);
    if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
      const next = Math.min(this.visible.length - 1, Math.max(0, k + (ev.key === 'ArrowDown' ? 1 : -1)));
      const top = next * ROW_H, h = this.scroll.clientHeight;
      if (top < this.scroll.scrollTop) this.scroll.scrollTop = top;
      else if (top + ROW_H > this.scroll.scrollTop + h) this.scroll.scrollTop = top + ROW_H - h;
      this.select(this.visible[next]);
      return;
    }
    if (k < 0) return;
    const r = this.rows[cur], id = r.s.span_id, hasKids = r.end > cur + 1;
    if (ev.key === 'ArrowRight' && hasKids && this.collapsed.has(id)) {
      this.collapsed.delete(id);
      this.relayout();
    } else if (ev.key === 'ArrowLeft' && hasKids && !this.collapsed.has(id)) {
      this.collapsed.add(id);
      this.relayout();
    } else if (ev.key === 'ArrowLeft' && r.parent >= 0) {
      this.select(r.parent);
    }
  };

  // --- the span detail (trace_detail.js) -------------------------------------------

  TraceView.prototype.detail = function () {
    const i = this.selected ? this.byId.get(this.selected) : undefined;
    const r = i === undefined ? null : this.rows[i];
    const parent = r && r.parent >= 0 ? this.rows[r.parent].s : null;
    this.panel.replaceChildren(...ms.spanDetail(r && r.s, parent, (s) =>
      this.zoomTo([s.offset_ms, s.offset_ms + Math.max(s.duration_ms, MIN_ZOOM_MS)])));
  };
})();
