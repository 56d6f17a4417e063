// Sends one GenAI trace to moonspan serve with the official OpenTelemetry JS
// SDK: an agent root, a chat span with usage, a tool span, a failing chat.
// usage: node send_genai.js URL proto|json [gzip]
// Prints one JSON line: {traceId, spans: {name: {spanId, parentSpanId, startNs, endNs}}}
// (times as decimal strings); exits 0 only when the exporter reports success.
'use strict';
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
const { Resource } = require('@opentelemetry/resources');
const api = require('@opentelemetry/api');

const [url, protocol, compression] = process.argv.slice(2);
const { OTLPTraceExporter } = require(protocol === 'proto'
  ? '@opentelemetry/exporter-trace-otlp-proto' : '@opentelemetry/exporter-trace-otlp-http');
const otlp = new OTLPTraceExporter({ url, compression: compression === 'gzip' ? 'gzip' : 'none' });

const memory = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  resource: new Resource({ 'service.name': 'py-agent' }),
  spanProcessors: [new SimpleSpanProcessor(memory)],
});
const tracer = provider.getTracer('moonspan-test', '1.0.0');

// fixed times (ms since the epoch) so the store can be checked exactly
const T0 = 1767225600000 + Math.floor(Math.random() * 1e6) * 1000;
const at = (ms) => new Date(T0 + ms);

const root = tracer.startSpan('invoke_agent planner', { kind: api.SpanKind.INTERNAL, startTime: at(0) });
const ctx = api.trace.setSpan(api.context.active(), root);
const chat = tracer.startSpan('chat gpt-4o', {
  kind: api.SpanKind.CLIENT, startTime: at(100),
  attributes: {
    'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024-08-06',
    'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 310,
    'gen_ai.usage.cache_read.input_tokens': 200,
    'gen_ai.response.time_to_first_chunk': 0.25,
    'gen_ai.response.finish_reasons': ['stop'],
  },
}, ctx);
chat.end(at(1350));
const tool = tracer.startSpan('execute_tool search', {
  kind: api.SpanKind.INTERNAL, startTime: at(1400),
  attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' },
}, ctx);
tool.end(at(1600));
const failing = tracer.startSpan('chat claude-sonnet-4-5', {
  kind: api.SpanKind.CLIENT, startTime: at(1700),
  attributes: {
    'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': 'claude-sonnet-4-5', 'error.type': 'timeout',
  },
}, ctx);
failing.recordException({ name: 'TimeoutError', message: 'upstream timeout' }, at(2900));
failing.setStatus({ code: api.SpanStatusCode.ERROR, message: 'upstream timeout after 1.2 s' });
failing.end(at(2900));
root.end(at(3000));

otlp.export(memory.getFinishedSpans(), (result) => {
  if (result.code !== 0) {
    console.error('export failed:', result.error && result.error.message);
    process.exit(1);
  }
  const ns = (t) => (BigInt(t[0]) * 1000000000n + BigInt(t[1])).toString();
  const spans = {};
  for (const s of memory.getFinishedSpans())
    spans[s.name] = { spanId: s.spanContext().spanId, parentSpanId: s.parentSpanId || '',
                      startNs: ns(s.startTime), endNs: ns(s.endTime) };
  console.log(JSON.stringify({ traceId: root.spanContext().traceId, spans }));
  otlp.shutdown().then(() => process.exit(0));
});
