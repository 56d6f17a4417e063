/* ms_otlp_schema — the OTLP wire contract moonspan speaks, in one place
 * for the exporter (ms_otlp*.c) and the receiver (serve --otlp): protobuf
 * field numbers and wire types of opentelemetry-proto v1.11.0, the enum
 * values (also the integers OTLP/JSON uses), the HTTP paths and media
 * types, and the attribute keys moonspan writes and reads (GenAI
 * semantic conventions v1.41.0, plus what Langfuse and Phoenix read).
 *
 * Source: /work/shared/reference/otel-export.md sections 1-3, which cite
 * the .proto files. Names follow the proto: MS_PB_<MESSAGE>_<FIELD>.
 * Header only; nothing here allocates or links. */
#ifndef MS_OTLP_SCHEMA_H
#define MS_OTLP_SCHEMA_H

/* --- protobuf wire types ------------------------------------------------ */
enum ms_pb_wire {
    MS_PB_VARINT = 0,
    MS_PB_FIXED64 = 1,
    MS_PB_LEN = 2,      /* strings, bytes, messages, packed repeated */
    MS_PB_FIXED32 = 5
};

/* --- collector/trace/v1/trace_service.proto ----------------------------- */
enum {
    MS_PB_EXPORT_TRACE_REQUEST_RESOURCE_SPANS = 1,   /* repeated ResourceSpans */
    MS_PB_EXPORT_TRACE_RESPONSE_PARTIAL_SUCCESS = 1, /* ExportTracePartialSuccess */
    MS_PB_TRACE_PARTIAL_REJECTED_SPANS = 1,          /* int64 */
    MS_PB_TRACE_PARTIAL_ERROR_MESSAGE = 2            /* string */
};

/* --- trace/v1/trace.proto ------------------------------------------------ */
enum {
    MS_PB_RESOURCE_SPANS_RESOURCE = 1,
    MS_PB_RESOURCE_SPANS_SCOPE_SPANS = 2,
    MS_PB_RESOURCE_SPANS_SCHEMA_URL = 3,

    MS_PB_SCOPE_SPANS_SCOPE = 1,
    MS_PB_SCOPE_SPANS_SPANS = 2,
    MS_PB_SCOPE_SPANS_SCHEMA_URL = 3,

    MS_PB_SPAN_TRACE_ID = 1,             /* bytes, 16 */
    MS_PB_SPAN_SPAN_ID = 2,              /* bytes, 8 */
    MS_PB_SPAN_TRACE_STATE = 3,
    MS_PB_SPAN_PARENT_SPAN_ID = 4,       /* bytes, 8; absent for a root */
    MS_PB_SPAN_NAME = 5,
    MS_PB_SPAN_KIND = 6,                 /* enum ms_otlp_kind */
    MS_PB_SPAN_START_TIME_UNIX_NANO = 7, /* fixed64 */
    MS_PB_SPAN_END_TIME_UNIX_NANO = 8,   /* fixed64 */
    MS_PB_SPAN_ATTRIBUTES = 9,
    MS_PB_SPAN_DROPPED_ATTRIBUTES_COUNT = 10,
    MS_PB_SPAN_EVENTS = 11,
    MS_PB_SPAN_LINKS = 13,
    MS_PB_SPAN_STATUS = 15,
    MS_PB_SPAN_FLAGS = 16,               /* fixed32 */

    MS_PB_EVENT_TIME_UNIX_NANO = 1,      /* fixed64 */
    MS_PB_EVENT_NAME = 2,
    MS_PB_EVENT_ATTRIBUTES = 3,

    MS_PB_STATUS_MESSAGE = 2,
    MS_PB_STATUS_CODE = 3
};

/* --- collector/{metrics,logs}/v1 and metrics/v1, logs/v1 -----------------
 * Their envelopes have the trace envelope's numbers: request.resource_X=1,
 * ResourceX{resource=1, scope_X=2, schema_url=3}, ScopeX{scope=1, X=2,
 * schema_url=3}; so one writer makes all three (ms_otlp_proto_request).
 * The partial successes too: rejected_data_points / rejected_log_records
 * = 1, error_message = 2. */
enum {
    MS_PB_METRIC_NAME = 1,
    MS_PB_METRIC_DESCRIPTION = 2,
    MS_PB_METRIC_UNIT = 3,
    MS_PB_METRIC_GAUGE = 5,
    MS_PB_METRIC_SUM = 7,
    MS_PB_METRIC_HISTOGRAM = 9,

    MS_PB_GAUGE_DATA_POINTS = 1,
    MS_PB_SUM_DATA_POINTS = 1,
    MS_PB_SUM_AGGREGATION_TEMPORALITY = 2,   /* enum: 2 CUMULATIVE */
    MS_PB_SUM_IS_MONOTONIC = 3,
    MS_PB_HISTOGRAM_DATA_POINTS = 1,
    MS_PB_HISTOGRAM_AGGREGATION_TEMPORALITY = 2,

    MS_PB_NUMBER_POINT_START_TIME_UNIX_NANO = 2, /* fixed64 */
    MS_PB_NUMBER_POINT_TIME_UNIX_NANO = 3,       /* fixed64 */
    MS_PB_NUMBER_POINT_AS_DOUBLE = 4,            /* double */
    MS_PB_NUMBER_POINT_AS_INT = 6,               /* sfixed64 */
    MS_PB_NUMBER_POINT_ATTRIBUTES = 7,

    MS_PB_HIST_POINT_START_TIME_UNIX_NANO = 2,   /* fixed64 */
    MS_PB_HIST_POINT_TIME_UNIX_NANO = 3,         /* fixed64 */
    MS_PB_HIST_POINT_COUNT = 4,                  /* fixed64 */
    MS_PB_HIST_POINT_SUM = 5,                    /* double */
    MS_PB_HIST_POINT_BUCKET_COUNTS = 6,          /* packed fixed64 */
    MS_PB_HIST_POINT_EXPLICIT_BOUNDS = 7,        /* packed double */
    MS_PB_HIST_POINT_ATTRIBUTES = 9,

    MS_PB_LOG_TIME_UNIX_NANO = 1,                /* fixed64 */
    MS_PB_LOG_SEVERITY_NUMBER = 2,               /* enum */
    MS_PB_LOG_SEVERITY_TEXT = 3,
    MS_PB_LOG_BODY = 5,                          /* AnyValue */
    MS_PB_LOG_ATTRIBUTES = 6,
    MS_PB_LOG_FLAGS = 8,                         /* fixed32 */
    MS_PB_LOG_TRACE_ID = 9,                      /* bytes, 16 */
    MS_PB_LOG_SPAN_ID = 10,                      /* bytes, 8 */
    MS_PB_LOG_OBSERVED_TIME_UNIX_NANO = 11,      /* fixed64 */
    MS_PB_LOG_EVENT_NAME = 12
};
enum { MS_OTLP_TEMPORALITY_DELTA = 1, MS_OTLP_TEMPORALITY_CUMULATIVE = 2 };
/* LogRecord.severity_number (the log data model): INFO 9, WARN 13, ERROR 17 */
enum { MS_OTLP_SEVERITY_INFO = 9, MS_OTLP_SEVERITY_WARN = 13, MS_OTLP_SEVERITY_ERROR = 17 };

/* --- resource/v1, common/v1 ---------------------------------------------- */
enum {
    MS_PB_RESOURCE_ATTRIBUTES = 1,

    MS_PB_SCOPE_NAME = 1,
    MS_PB_SCOPE_VERSION = 2,

    MS_PB_KEY_VALUE_KEY = 1,
    MS_PB_KEY_VALUE_VALUE = 2,           /* AnyValue */

    MS_PB_ANY_STRING = 1,
    MS_PB_ANY_BOOL = 2,
    MS_PB_ANY_INT = 3,                   /* int64, varint (two's complement) */
    MS_PB_ANY_DOUBLE = 4,                /* fixed64 */
    MS_PB_ANY_ARRAY = 5,                 /* ArrayValue */
    MS_PB_ANY_KVLIST = 6,
    MS_PB_ANY_BYTES = 7,

    MS_PB_ARRAY_VALUES = 1               /* repeated AnyValue */
};

/* Span.kind and Status.code: the proto enums, and the integers of OTLP/JSON. */
enum ms_otlp_kind {
    MS_OTLP_KIND_UNSPECIFIED = 0,
    MS_OTLP_KIND_INTERNAL = 1,
    MS_OTLP_KIND_SERVER = 2,
    MS_OTLP_KIND_CLIENT = 3,
    MS_OTLP_KIND_PRODUCER = 4,
    MS_OTLP_KIND_CONSUMER = 5
};
enum ms_otlp_status {
    MS_OTLP_STATUS_UNSET = 0,
    MS_OTLP_STATUS_OK = 1,
    MS_OTLP_STATUS_ERROR = 2
};

/* --- OTLP/HTTP ----------------------------------------------------------- */
#define MS_OTLP_PATH_TRACES "/v1/traces"
#define MS_OTLP_PATH_METRICS "/v1/metrics"
#define MS_OTLP_PATH_LOGS "/v1/logs"
#define MS_OTLP_MEDIA_PROTOBUF "application/x-protobuf"
#define MS_OTLP_MEDIA_JSON "application/json"
#define MS_OTLP_DEFAULT_ENDPOINT "http://localhost:4318"
#define MS_OTLP_MAX_REQUEST (64u << 20)  /* receivers answer 413 beyond */
#define MS_OTLP_MAX_RESPONSE (4u << 20)  /* a client reads no more */

#define MS_OTLP_SCOPE_NAME "moonspan"
#define MS_OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.41.0"

/* --- attribute keys ------------------------------------------------------ */
/* resource */
#define MS_ATTR_SERVICE_NAME "service.name"
/* GenAI semantic conventions v1.41.0 */
#define MS_ATTR_GENAI_OPERATION "gen_ai.operation.name"       /* "chat" */
#define MS_ATTR_GENAI_PROVIDER "gen_ai.provider.name"
#define MS_ATTR_GENAI_SYSTEM_OLD "gen_ai.system"              /* before v1.37; read only */
#define MS_ATTR_GENAI_REQUEST_MODEL "gen_ai.request.model"
#define MS_ATTR_GENAI_RESPONSE_MODEL "gen_ai.response.model"
#define MS_ATTR_GENAI_FINISH_REASONS "gen_ai.response.finish_reasons" /* string[] */
#define MS_ATTR_GENAI_INPUT_TOKENS "gen_ai.usage.input_tokens"   /* includes cached */
#define MS_ATTR_GENAI_OUTPUT_TOKENS "gen_ai.usage.output_tokens"
#define MS_ATTR_GENAI_CACHE_READ "gen_ai.usage.cache_read.input_tokens"
#define MS_ATTR_GENAI_CACHE_CREATION "gen_ai.usage.cache_creation.input_tokens"
#define MS_ATTR_GENAI_TTFC "gen_ai.response.time_to_first_chunk" /* double, seconds */
#define MS_ATTR_GENAI_CONVERSATION "gen_ai.conversation.id"
#define MS_ATTR_GENAI_COST "gen_ai.usage.cost"                 /* USD; Langfuse's total */
#define MS_ATTR_ERROR_TYPE "error.type"
#define MS_ATTR_RESEND_COUNT "http.request.resend_count"
/* Langfuse */
#define MS_ATTR_LANGFUSE_COMPLETION_START "langfuse.observation.completion_start_time" /* ISO-8601 */
#define MS_ATTR_LANGFUSE_TRACE_TAGS "langfuse.trace.tags" /* string[] on the root */
/* OpenInference (Phoenix) */
#define MS_ATTR_OI_SPAN_KIND "openinference.span.kind"         /* "LLM", "CHAIN" */
#define MS_ATTR_OI_MODEL_NAME "llm.model_name"
#define MS_ATTR_OI_PROVIDER "llm.provider"
#define MS_ATTR_OI_TOKENS_PROMPT "llm.token_count.prompt"
#define MS_ATTR_OI_TOKENS_COMPLETION "llm.token_count.completion"
#define MS_ATTR_OI_TOKENS_TOTAL "llm.token_count.total"
#define MS_ATTR_OI_CACHE_READ "llm.token_count.prompt_details.cache_read"
#define MS_ATTR_OI_CACHE_WRITE "llm.token_count.prompt_details.cache_write"
/* moonspan's own, for what no convention names */
#define MS_ATTR_MS_KIND "moonspan.kind"                  /* trace, span, llm, fold */
#define MS_ATTR_MS_ESTIMATED "moonspan.tokens.estimated" /* tokens estimated, not reported */
#define MS_ATTR_MS_REPLAYED "moonspan.replayed"
#define MS_ATTR_MS_SAMPLED_OUT "moonspan.sampled_out"    /* a summary: the spans were not kept */
#define MS_ATTR_MS_SPAN_COUNT "moonspan.span_count"
#define MS_ATTR_MS_FOLD_COUNT "moonspan.fold.count"
#define MS_ATTR_MS_FOLD_ERRORS "moonspan.fold.errors"
#define MS_ATTR_MS_FOLD_TOTAL_MS "moonspan.fold.total_ms"
#define MS_ATTR_MS_FOLD_MIN_MS "moonspan.fold.min_ms"
#define MS_ATTR_MS_FOLD_MAX_MS "moonspan.fold.max_ms"
#define MS_ATTR_MS_STATUS "moonspan.status"              /* interrupted, incomplete */

#endif
