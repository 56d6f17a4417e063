// page_traces.js — #/traces: the stored traces, filtered, sorted and paged (GET /api/traces).
'use strict';

ms.page('/traces', async (params, el) => {
  el.appendChild(ms.el('h1', null, 'Traces'));
});
