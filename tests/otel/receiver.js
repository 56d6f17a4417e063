// A loopback OTLP/HTTP receiver for moonspan's export tests.
//
//   node receiver.js --port-file F --log F [--answers LIST] [--phoenix] [--port N]
//
// Listens on 127.0.0.1 (--port, else a free port; written to --port-file once it
// listens), takes POSTs on any path (the log says which), gunzips, and decodes the body with the
// official OTLP schema (@opentelemetry/otlp-transformer's generated
// protobuf root) or JSON.parse, by Content-Type: an ExportMetricsServiceRequest
// on a path ending in /v1/metrics, an ExportLogsServiceRequest on /v1/logs,
// else an ExportTraceServiceRequest. Metrics and logs sent as JSON go
// through the schema too (fromObject, ids from hex), so both encodings
// are normalised alike. Each request is logged as
// one JSON line: {status, contentType, contentEncoding, authorization,
// headers, body (normalised: ids as hex, int64 as strings), error}.
//
// --answers is the sequence of answers, the last one repeating:
//   200          success (an empty ExportTraceServiceResponse / "{}")
//   503:S        503 with Retry-After: S (also 429:S, 502:S, 504:S)
//   500, 400...  that status
//   partial:N    200 with partial_success {rejected_spans N (rejected_data_points,
//                rejected_log_records on /v1/metrics, /v1/logs), error_message}
//   langfuse     200 with a JSON body whatever was sent (Langfuse does so)
//   hang         never answers (the request is logged with status 0)
// --phoenix answers 415 unless Content-Type is exactly application/x-protobuf.
// The process ends when its stdin closes (the spec that started it through
// io.popen ended, however it ended), or after 120 s whatever happens.
'use strict';
const http = require('http');
const fs = require('fs');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const pb = root.opentelemetry.proto.collector.trace.v1;
const pbMetrics = root.opentelemetry.proto.collector.metrics.v1;
const pbLogs = root.opentelemetry.proto.collector.logs.v1;
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--phoenix') args.phoenix = true;
  else args[a.replace(/^--/, '')] = process.argv[++i];
}
const answers = (args.answers || '200').split(',');
let served = 0;

const hex = (b) => (b && b.length ? Buffer.from(b).toString('hex') : '');

// An AnyValue as plain JS: strings, int64 as decimal strings, doubles,
// booleans, arrays. Both encodings end up the same.
function anyValue(v) {
  if (v == null) return null;
  if (v.stringValue != null) return v.stringValue;
  if (v.intValue != null) return String(v.intValue);
  if (v.doubleValue != null) return Number(v.doubleValue);
  if (v.boolValue != null) return v.boolValue;
  if (v.arrayValue != null) return (v.arrayValue.values || []).map(anyValue);
  if (v.bytesValue != null) return hex(v.bytesValue);
  return null;
}
function attrs(list) {
  const out = {};
  for (const kv of list || []) {
    if (Object.prototype.hasOwnProperty.call(out, kv.key)) out.__duplicate = kv.key;
    out[kv.key] = anyValue(kv.value);
  }
  return out;
}
// protobuf ids are bytes; OTLP/JSON ids are hex already
function id(v) {
  if (v == null) return '';
  return typeof v === 'string' ? v : hex(v);
}
function normalise(req) {
  return (req.resourceSpans || []).map((rs) => ({
    resource: attrs(rs.resource && rs.resource.attributes),
    scopeSpans: (rs.scopeSpans || []).map((ss) => ({
      scope: ss.scope || {},
      schemaUrl: ss.schemaUrl || '',
      spans: (ss.spans || []).map((s) => ({
        traceId: id(s.traceId),
        spanId: id(s.spanId),
        parentSpanId: id(s.parentSpanId),
        name: s.name,
        kind: s.kind,
        startTimeUnixNano: String(s.startTimeUnixNano),
        endTimeUnixNano: String(s.endTimeUnixNano),
        attributes: attrs(s.attributes),
        events: (s.events || []).map((e) => ({
          name: e.name, timeUnixNano: String(e.timeUnixNano), attributes: attrs(e.attributes),
        })),
        status: {code: (s.status && s.status.code) || 0, message: (s.status && s.status.message) || ''},
      })),
    })),
  }));
}

// Metrics: each metric with its kind and points; int64 as decimal strings.
const str = (v) => (v == null ? null : String(v));
function normaliseMetrics(req) {
  return (req.resourceMetrics || []).map((rm) => ({
    resource: attrs(rm.resource && rm.resource.attributes),
    scopeMetrics: (rm.scopeMetrics || []).map((sm) => ({
      scope: sm.scope || {},
      schemaUrl: sm.schemaUrl || '',
      metrics: (sm.metrics || []).map((m) => {
        const kind = m.histogram ? 'histogram' : m.sum ? 'sum' : m.gauge ? 'gauge' : 'other';
        const data = m[kind] || {};
        return {
          name: m.name, unit: m.unit || '', description: m.description || '', kind,
          temporality: data.aggregationTemporality || 0, isMonotonic: !!data.isMonotonic,
          points: (data.dataPoints || []).map((p) => ({
            attributes: attrs(p.attributes),
            startTimeUnixNano: str(p.startTimeUnixNano), timeUnixNano: str(p.timeUnixNano),
            asInt: str(p.asInt), asDouble: p.asDouble == null ? null : Number(p.asDouble),
            count: str(p.count), sum: p.sum == null ? null : Number(p.sum),
            bucketCounts: (p.bucketCounts || []).map(String),
            explicitBounds: (p.explicitBounds || []).map(Number),
          })),
        };
      }),
    })),
  }));
}

function normaliseLogs(req) {
  return (req.resourceLogs || []).map((rl) => ({
    resource: attrs(rl.resource && rl.resource.attributes),
    scopeLogs: (rl.scopeLogs || []).map((sl) => ({
      scope: sl.scope || {},
      schemaUrl: sl.schemaUrl || '',
      logRecords: (sl.logRecords || []).map((r) => ({
        timeUnixNano: str(r.timeUnixNano), observedTimeUnixNano: str(r.observedTimeUnixNano),
        severityNumber: r.severityNumber || 0, severityText: r.severityText || '',
        body: anyValue(r.body), attributes: attrs(r.attributes), flags: r.flags || 0,
        traceId: id(r.traceId), spanId: id(r.spanId),
      })),
    })),
  }));
}

// OTLP/JSON ids are hex; protobufjs's fromObject reads bytes as base64
function hexIds(req) {
  for (const rl of req.resourceLogs || []) for (const sl of rl.scopeLogs || []) for (const r of sl.logRecords || []) {
    for (const k of ['traceId', 'spanId']) if (typeof r[k] === 'string') r[k] = Buffer.from(r[k], 'hex');
  }
  return req;
}

const objectOpts = {longs: String, enums: Number, bytes: Buffer};
// The body of a request to `path` as the official schema reads it.
function decode(path, raw, json) {
  const p = path.split('?')[0];
  if (p.endsWith('/v1/metrics') || p.endsWith('/v1/logs')) {
    const metrics = p.endsWith('/v1/metrics');
    const T = metrics ? pbMetrics.ExportMetricsServiceRequest : pbLogs.ExportLogsServiceRequest;
    const msg = json ? T.fromObject(metrics ? JSON.parse(raw.toString('utf8')) : hexIds(JSON.parse(raw.toString('utf8'))))
      : T.decode(raw);
    const obj = T.toObject(msg, objectOpts);
    return metrics ? normaliseMetrics(obj) : normaliseLogs(obj);
  }
  const body = json ? JSON.parse(raw.toString('utf8'))
    : pb.ExportTraceServiceRequest.toObject(pb.ExportTraceServiceRequest.decode(raw), objectOpts);
  return normalise(body);
}

function answer(res, token, json, path) {
  const [what, arg] = token.split(':');
  if (what === 'hang') return;
  const type = json ? 'application/json' : 'application/x-protobuf';
  if (what === '200') {
    res.writeHead(200, {'Content-Type': type});
    return res.end(json ? '{}' : Buffer.alloc(0));
  }
  if (what === 'langfuse') {
    res.writeHead(200, {'Content-Type': 'application/json'});
    return res.end('{"status":"ok"}');
  }
  if (what === 'partial') {
    const ps = {rejectedSpans: Number(arg), errorMessage: `${arg} spans too old`};
    res.writeHead(200, {'Content-Type': type});
    // the count's name is the signal's; its field number is 1 in all three
    const key = /\/v1\/metrics/.test(path) ? 'rejectedDataPoints' : /\/v1\/logs/.test(path) ? 'rejectedLogRecords' : 'rejectedSpans';
    if (json) return res.end(JSON.stringify({partialSuccess: {[key]: String(arg), errorMessage: ps.errorMessage}}));
    return res.end(Buffer.from(pb.ExportTraceServiceResponse.encode({partialSuccess: ps}).finish()));
  }
  const headers = {'Content-Type': 'text/plain'};
  if (arg) headers['Retry-After'] = arg;
  res.writeHead(Number(what), headers);
  res.end(`status ${what} from the test receiver\n`);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const entry = {
      method: req.method, path: req.url,
      contentType: req.headers['content-type'] || '',
      contentEncoding: req.headers['content-encoding'] || '',
      authorization: req.headers['authorization'] || '',
      userAgent: req.headers['user-agent'] || '',
      headers: req.headers,
    };
    let raw = Buffer.concat(chunks);
    const json = entry.contentType.startsWith('application/json');
    let token = answers[Math.min(served, answers.length - 1)];
    served++;
    try {
      if (req.method !== 'POST') throw Object.assign(new Error('not a POST'), {status: 405});
      if (args.phoenix && entry.contentType !== 'application/x-protobuf') throw Object.assign(new Error('415'), {status: 415});
      if (!json && !entry.contentType.startsWith('application/x-protobuf')) throw Object.assign(new Error('bad type'), {status: 415});
      if (entry.contentEncoding === 'gzip') raw = zlib.gunzipSync(raw);
      entry.bytes = raw.length;
      entry.body = decode(req.url, raw, json);
      if (json) entry.rawJson = raw.toString('utf8');
    } catch (e) {
      entry.error = String(e.message || e);
      token = String(e.status || 400);
    }
    entry.status = token === 'hang' ? 0 : Number(token.split(':')[0]) || 200;
    fs.appendFileSync(args.log, JSON.stringify(entry) + '\n');
    answer(res, token, json, req.url);
  });
});
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  fs.writeFileSync(args['port-file'] + '.tmp', String(server.address().port));
  fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
});
setTimeout(() => process.exit(0), 120000).unref();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
