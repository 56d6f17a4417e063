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

  const BUCKET_MS = { hour: 3600e3, day: 86400e3 };

  // A time label: a day bucket is its date, an hour bucket its date and
  // hour; otherwise as fine as the span shown needs.
  function shortTime(ms, span, bucket) {
    const iso = new Date(ms).toISOString();
    if (bucket === 'day' || span > 2 * 86400e3) return iso.slice(5, 10);
    if (bucket === 'hour') return iso.slice(5, 10) + ' ' + iso.slice(11, 16);
    return span > 3600e3 ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 19);
  }

  // opts: {series: [{name, points: [{x (epoch ms), y (number|null), label?, href?}]}],
  //        yFormat(v) -> text, title, test (data-test of the figure), height,
  //        bucket ('hour'|'day': each x is a bucket's start, and the time
  //        axis is labelled at bucket starts), yMax (the axis reaches it at
  //        least: 1 for a pass rate, so 80% does not look like the top)}
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
    const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
    let x0 = xs[0], x1 = xs[xs.length - 1];
    // one point sits in the middle, a bucket (or an hour) either side
    if (x0 === x1) { x0 -= BUCKET_MS[opts.bucket] || 3600e3; x1 += BUCKET_MS[opts.bucket] || 3600e3; }
    const ys = ticks(Math.min(0, ...pts.map((p) => p.y)), Math.max(opts.yMax ?? -Infinity, ...pts.map((p) => p.y)), 4);
    const y0 = ys[0], y1 = ys[ys.length - 1] > y0 ? ys[ys.length - 1] : y0 + 1;
    const X = (x) => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
    const Y = (y) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
    const svg = ms.svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    ys.forEach((v) => {
      svg.appendChild(ms.svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }));
      // zero is 0 whatever the unit ("0 ns" on a latency axis reads as a measurement)
      svg.appendChild(ms.svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis' },
        v === 0 ? '0' : fmt(v)));
    });
    // bucketed series are labelled at real bucket starts, never between them
    const xt = opts.bucket
      ? (xs.length <= 3 ? xs : [xs[0], xs[Math.floor((xs.length - 1) / 2)], xs[xs.length - 1]])
      : [x0, x0 + (x1 - x0) / 2, x1];
    let lastLabel = null;
    xt.forEach((v) => {
      const label = shortTime(v, x1 - x0, opts.bucket);
      if (label === lastLabel) return; // points a second apart would repeat the same text
      lastLabel = label;
      const anchor = X(v) <= m.l + 1 ? 'start' : X(v) >= W - m.r - 1 ? 'end' : 'middle';
      svg.appendChild(ms.svg('text', { x: X(v), y: H - 8, 'text-anchor': anchor, class: 'axis', 'data-test': 'x-tick' },
        label));
    });
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
