// app.js — the UI's shell: the global `ms` the pages build on, the hash
// router, and the polling that lets pages follow a run while it writes.
//
// The contract a page relies on (page_*.js, loaded after this file):
//   ms.page(prefix, render)  registers a page for '#PREFIX' and '#PREFIX/...'
//                            ('/traces', '/trace'); render(params, el) fills el
//                            (may be async). params is a URLSearchParams of the
//                            hash's query, plus params.path (the hash path) and
//                            params.rest (what follows PREFIX/, e.g. the id).
//   ms.api(path, params)     GET path with the query params (an object; array
//                            values repeat the name) and the token; resolves to
//                            the JSON, rejects with an Error whose message is
//                            the server's {"error"} text (and .status, and
//                            .body: the whole JSON reply).
//   ms.el(tag, attrs, ...children)  an element; attrs: 'class', 'text', 'style'
//                            (an object, set through CSSOM: CSP forbids style
//                            attributes), 'on<event>' functions, anything else
//                            through setAttribute. Children: nodes, or strings
//                            (text nodes, never HTML); null/false skipped;
//                            arrays flattened. ms.svg is the same for SVG.
//   ms.fmt.ms(x), ms.fmt.usd(x), ms.fmt.tokens(x), ms.fmt.time(start_ns|ISO)
//                            display strings; null/undefined -> '–'.
//   ms.onChange(fn)          fn() runs when /api/meta's data_version changes
//                            (polled every 2 s) while the current page is shown.
//   ms.go(path, params)      navigates to '#PATH?params'.
//   ms.meta                  the last /api/meta reply.
// Text from the store never goes through innerHTML: only ms.el/textContent.
'use strict';

(function () {
  const token = new URLSearchParams(window.location.search).get('token');
  const pages = [];
  let listeners = [];
  let renderSeq = 0;

  const ms = { meta: null };
  window.ms = ms;

  ms.page = function (prefix, render) {
    prefix = String(prefix).replace(/^#/, '').replace(/\/+$/, '');
    if (!prefix.startsWith('/')) prefix = '/' + prefix;
    pages.push({ prefix, render });
  };

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, String(x)));
      else q.append(k, String(v));
    }
    return q;
  }

  ms.api = async function (path, params) {
    const q = query(params).toString();
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const r = await fetch(path + (q ? '?' + q : ''), { headers, cache: 'no-store' });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) {
      const err = new Error((body && body.error) || 'HTTP ' + r.status + ' from ' + path);
      err.status = r.status;
      err.body = body;
      throw err;
    }
    return body;
  };

  function build(node, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.setAttribute('class', String(v));
      else if (k === 'text') node.textContent = String(v);
      else if (k === 'style') Object.assign(node.style, v);
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    const add = (c) => {
      if (c === undefined || c === null || c === false) return;
      if (Array.isArray(c)) c.forEach(add);
      else if (c instanceof Node) node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    };
    children.forEach(add);
    return node;
  }
  ms.el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  ms.svg = (tag, attrs, ...children) =>
    build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);

  const none = (x) => x === undefined || x === null || (typeof x === 'number' && !isFinite(x));
  ms.fmt = {
    ms(x) {
      if (none(x)) return '–';
      if (x >= 60000) return (x / 60000).toFixed(1) + ' min';
      if (x >= 1000) return (x / 1000).toFixed(x >= 10000 ? 1 : 2) + ' s';
      if (x >= 10) return x.toFixed(0) + ' ms';
      if (x >= 1) return x.toFixed(1) + ' ms';
      // below a millisecond as moonspan prints it: 250 µs, 3.00 µs, 400 ns
      const us = x * 1000;
      if (us >= 100) return us.toFixed(0) + ' µs';
      if (us >= 10) return us.toFixed(1) + ' µs';
      if (us >= 1) return us.toFixed(2) + ' µs';
      return (x * 1e6).toFixed(0) + ' ns';
    },
    usd(x) {
      if (none(x)) return '–';
      // under a billionth of a dollar is the rounding of sums and differences, not money
      if (Math.abs(x) < 5e-10) return '$0';
      const sign = x < 0 ? '-' : '';
      x = Math.abs(x);
      // two significant digits, never in exponent form ($1.4e-7 reads as nothing)
      if (x < 0.01) return sign + '$' + x.toFixed(1 - Math.floor(Math.log10(x)));
      return sign + '$' + x.toFixed(x < 100 ? 4 : 2);
    },
    tokens(x) {
      if (none(x)) return '–';
      return Number(x).toLocaleString('en-US');
    },
    time(t) {
      if (none(t) || t === '') return '–';
      // start_ns arrives as a JSON number, which loses the last digits: to the second it is exact
      const d = typeof t === 'number' ? new Date(t / 1e6) : new Date(t);
      return isNaN(d) ? String(t) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    },
  };

  ms.onChange = function (fn) {
    listeners.push(fn);
  };

  ms.go = function (path, params) {
    const q = query(params).toString();
    window.location.hash = '#' + path + (q ? '?' + q : '');
  };

  function parseHash() {
    const h = window.location.hash.replace(/^#/, '') || '/traces';
    const i = h.indexOf('?');
    // the browser %-encodes some characters of the hash (space, quotes, <>)
    let path = i < 0 ? h : h.slice(0, i);
    try {
      path = decodeURIComponent(path);
    } catch (e) {
      // a stray '%' stays as it is
    }
    const params = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
    params.path = path;
    return params;
  }

  function findPage(path) {
    let best = null;
    for (const p of pages) {
      if ((path === p.prefix || path.startsWith(p.prefix + '/')) && (!best || p.prefix.length > best.prefix.length))
        best = p;
    }
    return best;
  }

  async function route() {
    const seq = ++renderSeq;
    listeners = [];
    const params = parseHash();
    const main = document.getElementById('page');
    document.querySelectorAll('nav a[data-nav]').forEach((a) => {
      const n = a.getAttribute('data-nav');
      a.classList.toggle('active', params.path === n || params.path.startsWith(n + '/') ||
        (n === '/traces' && params.path.startsWith('/trace/')) || (n === '/evals' && params.path.startsWith('/eval/')));
    });
    const page = findPage(params.path);
    const el = ms.el('div', { class: 'page-body' });
    main.replaceChildren(el);
    if (!page) {
      el.appendChild(ms.el('p', { class: 'error', 'data-test': 'no-page' },
        'No page at #' + params.path + ' in this build; the pages are in the bar above.'));
      return;
    }
    params.rest = params.path.slice(page.prefix.length + 1);
    try {
      await page.render(params, el);
    } catch (e) {
      if (seq !== renderSeq) return;
      el.appendChild(ms.el('p', { class: 'error', 'data-test': 'page-error' }, String(e && e.message || e)));
    }
  }

  function showMeta(m) {
    const span = document.querySelector('[data-test="meta"]');
    if (span) span.textContent = m.db + ' · ' + ms.fmt.tokens(m.traces) + ' traces · moonspan ' + m.version;
  }

  async function poll() {
    try {
      const m = await ms.api('/api/meta');
      const changed = ms.meta && m.data_version !== ms.meta.data_version;
      ms.meta = m;
      showMeta(m);
      if (changed) {
        for (const fn of listeners.slice()) {
          try {
            await fn();
          } catch (e) {
            console.error(e);
          }
        }
      }
    } catch (e) {
      const span = document.querySelector('[data-test="meta"]');
      if (span) span.textContent = 'cannot reach moonspan ui: ' + e.message;
    }
  }

  window.addEventListener('hashchange', route);
  document.addEventListener('DOMContentLoaded', () => {
    poll().then(route);
    setInterval(poll, 2000);
  });
})();
