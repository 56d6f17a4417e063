-- moonspan store, schema version 1 (PRAGMA user_version = 1,
-- PRAGMA application_id = 0x4d6f6f6e, "Moon").
--
-- Shape: spans are appended in rowid order with no secondary index; the
-- spans of one trace are written in one transaction, so they occupy the
-- contiguous rowid range traces.first_span .. first_span + span_count - 1.
-- Reading a trace is a rowid range scan; writing a span touches one b-tree.
-- Ids: trace ids are 32 lowercase hex characters; span ids are 64-bit
-- integers (printf('%016x', span_id) gives the W3C hex form).

CREATE TABLE IF NOT EXISTS runs (
  id           INTEGER PRIMARY KEY,
  script       TEXT NOT NULL,           -- path as given to `moonspan run`
  args         TEXT NOT NULL,           -- JSON array of the script's arguments
  host_version TEXT NOT NULL,
  start_ns     INTEGER NOT NULL,        -- Unix epoch nanoseconds
  pid          INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS traces (
  id                 INTEGER PRIMARY KEY,
  trace_id           TEXT NOT NULL,     -- 32 hex
  run_id             INTEGER REFERENCES runs(id),
  name               TEXT NOT NULL,
  start_ns           INTEGER NOT NULL,  -- Unix epoch nanoseconds
  duration_ns        INTEGER NOT NULL,
  status             TEXT NOT NULL,     -- 'ok' | 'error'
  error_count        INTEGER NOT NULL,  -- errors raised in this trace (each counted once) + ctx:add_error calls
  span_count         INTEGER NOT NULL,  -- including the root span
  first_span         INTEGER NOT NULL,  -- rowid of the root span in spans
  input_tokens       INTEGER NOT NULL,  -- llm spans + ctx:add_tokens
  output_tokens      INTEGER NOT NULL,
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  cost_usd           REAL,              -- sum over priced llm calls; NULL when there was no priced call
  unknown_cost_calls INTEGER NOT NULL,  -- llm calls whose model has no price
  attrs              TEXT               -- JSON object, or NULL
);
-- not unique: with TRACEPARENT set, every trace of a run joins the outer trace id
CREATE INDEX IF NOT EXISTS traces_by_trace_id ON traces(trace_id);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces(start_ns);

CREATE TABLE IF NOT EXISTS spans (
  trace_row          INTEGER NOT NULL,  -- traces.id
  span_id            INTEGER NOT NULL,
  parent_id          INTEGER,           -- NULL for the root span
  name               TEXT NOT NULL,
  kind               TEXT NOT NULL,     -- 'trace' (root) | 'span' | 'llm'
  start_ns           INTEGER NOT NULL,  -- Unix epoch nanoseconds
  duration_ns        INTEGER NOT NULL,
  status             TEXT NOT NULL,     -- 'ok' | 'error'
  error_own          INTEGER NOT NULL,  -- 1 where the error was raised, 0 on spans it only passed through
  error_type         TEXT,
  error_message      TEXT,
  error_traceback    TEXT,
  attrs              TEXT,              -- JSON object, or NULL
  provider           TEXT,              -- llm spans only, from here down
  model              TEXT,
  input_tokens       INTEGER,
  output_tokens      INTEGER,
  cache_read_tokens  INTEGER,
  cache_write_tokens INTEGER,
  usage_estimated    INTEGER,           -- 1 when the provider gave no usage and tokens were estimated
  cost_usd           REAL,              -- NULL when the model has no price
  retries            INTEGER NOT NULL,  -- retries (attempts - 1) made inside this span
  retry_succeeded    INTEGER,           -- NULL when there was no retry; else 1/0
  ttft_ns            INTEGER            -- time to first token, streaming llm spans
);

CREATE TABLE IF NOT EXISTS span_events (
  trace_row INTEGER NOT NULL,
  span_id   INTEGER NOT NULL,
  name      TEXT NOT NULL,
  time_ns   INTEGER NOT NULL,           -- Unix epoch nanoseconds
  attrs     TEXT                        -- JSON object, or NULL
);
-- Events are few (retries, failed attempts, manual errors), so indexing
-- them by trace costs little and makes `moonspan show` independent of the
-- store's size.
CREATE INDEX IF NOT EXISTS span_events_by_trace ON span_events(trace_row);
