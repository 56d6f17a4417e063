// chart.js — small SVG charts for the checklist, eval and compare pages:
// ms.chart.line (series over time) and ms.chart.bar (labelled values).
//
// Built with ms.svg/ms.el only: every label is a text node, never markup,
// so names from the store cannot inject anything. Each point and bar
// carries its exact value in data-* attributes (data-series, data-x,
// data-y; data-label, data-value) and a <title> tooltip, so tests and
// scripts read the numbers the chart drew, not pixels.
'use strict';

(function () {
  const PALETTE = ['#3a5bd9', '#d9822b', '#2e9d5b', '#c2185b', '#7b57c9', '#00838f', '#8d6e63', '#6b6b70'];

  // Round, readable tick values covering [lo, hi].
  function ticks(lo, hi, n) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    const top = Math.ceil(hi / step - 1e-9) * step; // the last tick at or above hi: no point above the grid
    for (let v = Math.floor(lo / step) * step; v <= top + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function shortTime(ms, span) {
    const iso = new Date(ms).toISOString();
    if (span > 2 * 86400e3) return iso.slice(5, 10);
    return span > 3600e3 ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 19);
  }

  // opts: {series: [{name, points: [{x (epoch ms), y (number|null), label?, href?}]}],
  //        yFormat(v) -> text, title, test (data-test of the figure), height}
  // A null y is a gap: the line breaks there.
  function line(opts) {
    const W = opts.width || 760, H = opts.height || 220;
    const m = { l: 64, r: 16, t: 12, b: 28 };
    const fmt = opts.yFormat || ((v) => String(v));
    const pts = [];
    opts.series.forEach((s) => s.points.forEach((p) => { if (p.y !== null && p.y !== undefined && isFinite(p.y)) pts.push(p); }));
    const fig = ms.el('figure', { class: 'chart', 'data-test': opts.test || null });
    if (opts.title) fig.appendChild(ms.el('figcaption', null, opts.title));
    if (!pts.length) {
      fig.appendChild(ms.el('p', { class: 'note' }, 'No data in this selection.'));
      return fig;
    }
    let x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
    if (x0 === x1) { x0 -= 3600e3; x1 += 3600e3; }
    const ys = ticks(Math.min(0, ...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y)), 4);
    const y0 = ys[0], y1 = ys[ys.length - 1] > y0 ? ys[ys.length - 1] : y0 + 1;
    const X = (x) => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
    const Y = (y) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
    const svg = ms.svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    ys.forEach((v) => {
      svg.appendChild(ms.svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }));
      svg.appendChild(ms.svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmt(v)));
    });
    const xt = x1 - x0 > 0 ? [x0, x0 + (x1 - x0) / 2, x1] : [x0];
    xt.forEach((v, i) => svg.appendChild(ms.svg('text', {
      x: X(v), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === xt.length - 1 ? 'end' : 'middle', class: 'axis',
    }, shortTime(v, x1 - x0))));
    const legend = ms.el('div', { class: 'legend' });
    opts.series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      let d = '', pen = false;
      s.points.forEach((p) => {
        const ok = p.y !== null && p.y !== undefined && isFinite(p.y);
        if (ok) d += (pen ? 'L' : 'M') + X(p.x).toFixed(1) + ' ' + Y(p.y).toFixed(1);
        pen = ok;
      });
      const g = ms.svg('g', { 'data-series': s.name });
      g.appendChild(ms.svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 2 }));
      s.points.forEach((p) => {
        if (p.y === null || p.y === undefined || !isFinite(p.y)) return;
        const dot = ms.svg('circle', {
          cx: X(p.x), cy: Y(p.y), r: 3.5, fill: color, class: 'point' + (p.href ? ' link' : ''),
          'data-series': s.name, 'data-x': new Date(p.x).toISOString(), 'data-y': p.y,
        }, ms.svg('title', null, `${s.name} · ${p.label || new Date(p.x).toISOString()} · ${fmt(p.y)}`));
        if (p.href) dot.addEventListener('click', () => { window.location.hash = p.href; });
        g.appendChild(dot);
      });
      svg.appendChild(g);
      const key = ms.el('span', { class: 'key' }, s.name);
      key.style.setProperty('--key', color);
      legend.appendChild(key);
    });
    fig.appendChild(svg);
    fig.appendChild(legend);
    return fig;
  }

  // opts: {bars: [{label, value, note?}], format(v) -> text, title, test, max (bars shown)}
  // Horizontal bars, the largest first as given.
  function bar(opts) {
    const fmt = opts.format || ((v) => String(v));
    const bars = opts.bars.filter((b) => b.value !== null && b.value !== undefined && isFinite(b.value))
      .slice(0, opts.max || 12);
    const fig = ms.el('figure', { class: 'chart', 'data-test': opts.test || null });
    if (opts.title) fig.appendChild(ms.el('figcaption', null, opts.title));
    if (!bars.length) {
      fig.appendChild(ms.el('p', { class: 'note' }, 'No data in this selection.'));
      return fig;
    }
    const W = opts.width || 760, row = 22, labelW = 260, valueW = 90;
    const H = bars.length * row + 4;
    const top = Math.max(...bars.map((b) => b.value), 0) || 1;
    const svg = ms.svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    bars.forEach((b, i) => {
      const y = i * row + 2;
      const w = Math.max(1, (b.value / top) * (W - labelW - valueW - 12));
      const g = ms.svg('g', { class: 'bar', 'data-label': b.label, 'data-value': b.value });
      // the label is cut to fit; the tooltip has it whole
      const shown = b.label.length > 38 ? b.label.slice(0, 37) + '…' : b.label;
      g.appendChild(ms.svg('text', { x: labelW - 6, y: y + 14, 'text-anchor': 'end', class: 'label' }, shown));
      g.appendChild(ms.svg('rect', { x: labelW, y: y + 2, width: w, height: row - 6, rx: 2, class: 'fill' }));
      g.appendChild(ms.svg('text', { x: labelW + w + 6, y: y + 14, class: 'value' }, fmt(b.value)));
      g.appendChild(ms.svg('title', null, `${b.label} · ${fmt(b.value)}${b.note ? ' · ' + b.note : ''}`));
      svg.appendChild(g);
    });
    fig.appendChild(svg);
    return fig;
  }

  // fn wrapped for ms.onChange: while one reload runs, further changes
  // make one more reload after it, never several at once (a report over a
  // large store can take longer than the 2 s between polls).
  function coalesce(fn) {
    let busy = false, again = false;
    return async function () {
      if (busy) { again = true; return; }
      busy = true;
      try {
        do { again = false; await fn(); } while (again);
      } finally {
        busy = false;
      }
    };
  }

  ms.chart = { line, bar, ticks, coalesce, PALETTE };
})();
