// One raw OTLP/HTTP request, for the receiver's specs.
// usage: node post.js URL CONTENT_TYPE BODY_FILE [ENCODING] [--protobuf]
//   ENCODING  "gzip" compresses the body; any other value is only sent as
//             the Content-Encoding header; "-" sends none
//   --protobuf  BODY_FILE is an OTLP/JSON request: it is sent as protobuf,
//             encoded with the official OTLP schema (otlp-transformer's)
// Prints one JSON line: {status, contentType, retryAfter, body (text), decoded}
// where decoded is a protobuf ExportTraceServiceResponse read with the schema.
'use strict';
const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const T = root.opentelemetry.proto.collector.trace.v1;

const [url, ctype, file, encoding, mode] = process.argv.slice(2);
let body = fs.readFileSync(file);

// OTLP/JSON ids are hex; the schema's bytes fields want bytes
function idsToBytes(v) {
  if (Array.isArray(v)) return v.map(idsToBytes);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v))
      o[k] = (k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof x === 'string'
        ? Buffer.from(x, 'hex') : idsToBytes(x);
    return o;
  }
  return v;
}
if (mode === '--protobuf') {
  const msg = T.ExportTraceServiceRequest.fromObject(idsToBytes(JSON.parse(body.toString('utf8'))));
  body = Buffer.from(T.ExportTraceServiceRequest.encode(msg).finish());
}
const headers = { 'Content-Type': ctype };
if (encoding && encoding !== '-') {
  headers['Content-Encoding'] = encoding;
  if (encoding === 'gzip') body = zlib.gzipSync(body);
}
const req = http.request(url, { method: 'POST', headers, timeout: 20000 }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => {
    const raw = Buffer.concat(chunks);
    const out = { status: res.statusCode, contentType: res.headers['content-type'] || null,
                  retryAfter: res.headers['retry-after'] || null, body: raw.toString('utf8'), decoded: null };
    if (res.statusCode === 200 && out.contentType === 'application/x-protobuf')
      out.decoded = T.ExportTraceServiceResponse.toObject(T.ExportTraceServiceResponse.decode(raw),
                                                          { longs: String });
    console.log(JSON.stringify(out));
  });
});
req.on('error', (e) => { console.error('request failed:', e.message); process.exit(1); });
req.on('timeout', () => { console.error('request timed out'); req.destroy(); process.exit(1); });
req.end(body);
