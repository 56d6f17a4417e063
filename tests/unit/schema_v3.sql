-- moonspan store, schema version 3 (PRAGMA user_version = 3,
-- PRAGMA application_id = 0x4d6f6f6e, "Moon").
--
-- This text creates a new store. An older store is brought forward on
-- open for writing by the steps in ms_store.c (migrate), which add the
-- columns marked "v2"/"v3" below with ALTER TABLE and then run this text, whose
-- IF NOT EXISTS skips what is already there.
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
  status             TEXT NOT NULL,     -- 'ok' | 'error' | 'interrupted' (SIGINT/SIGTERM) | 'incomplete'
                                        -- (still open when the run ended: os.exit, an abandoned coroutine)
  error_count        INTEGER NOT NULL,  -- errors raised in this trace (each counted once) + ctx:add_error calls
  span_count         INTEGER NOT NULL,  -- including the root span
  first_span         INTEGER NOT NULL,  -- rowid of the root span in spans
  input_tokens       INTEGER NOT NULL,  -- llm spans + ctx:add_tokens
  output_tokens      INTEGER NOT NULL,
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  cost_usd           REAL,              -- sum over priced llm calls; NULL when there was no priced call
  unknown_cost_calls INTEGER NOT NULL,  -- llm calls whose model has no price
  attrs              TEXT,              -- JSON object, or NULL
  replayed_cost_usd  REAL               -- v2: the part of cost_usd whose calls were replayed
                                        -- from a recording (not spent); NULL when no call was
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
  status             TEXT NOT NULL,     -- 'ok' | 'error' | 'interrupted' | 'incomplete'; the root span
                                        -- carries its trace's status
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
  ttft_ns            INTEGER,           -- time to first token, streaming llm spans
  replayed           INTEGER,           -- v2: 1 when an llm span's answer came from a
                                        -- recording (`moonspan eval --replay`); else NULL
  backoff_ns         INTEGER            -- v3: time spent waiting between retry attempts
                                        -- (retry(), llm.call); NULL when there was none
);

CREATE TABLE IF NOT EXISTS span_events (
  trace_row INTEGER NOT NULL,
  span_id   INTEGER NOT NULL,
  name      TEXT NOT NULL,
  time_ns   INTEGER NOT NULL,           -- Unix epoch nanoseconds
  attrs     TEXT,                       -- JSON object, or NULL
  error_type    TEXT,                   -- v3: on 'error' events (ctx:add_error), the error's
  error_message TEXT                    -- type and message; NULL on other events
);
-- Events are few (retries, failed attempts, manual errors), so indexing
-- them by trace costs little and makes `moonspan show` independent of the
-- store's size.
CREATE INDEX IF NOT EXISTS span_events_by_trace ON span_events(trace_row);

-- Eval suites (`moonspan eval`), v2. One eval_runs row per suite run;
-- one eval_results row per case and repeat, pointing at the case's trace.
CREATE TABLE IF NOT EXISTS eval_runs (
  id                INTEGER PRIMARY KEY,
  run_id            INTEGER REFERENCES runs(id),
  suite             TEXT NOT NULL,      -- the suite's name
  suite_file        TEXT NOT NULL,      -- path as given to `moonspan eval`
  git_commit        TEXT,               -- NULL outside a git checkout
  start_ns          INTEGER NOT NULL,   -- Unix epoch nanoseconds
  end_ns            INTEGER,            -- NULL while running (or when the run died)
  config            TEXT NOT NULL,      -- JSON object: the options of the run
  cases             INTEGER,            -- results (case x repeat); NULL while running
  passed            INTEGER,
  pass_rate         REAL,               -- passed / cases
  threshold         REAL,               -- pass rate under which the suite fails; NULL: none
  p50_ms            REAL,               -- case latency
  p95_ms            REAL,
  cost_usd          REAL,               -- live spend; NULL when unknown
  replayed_cost_usd REAL,               -- recorded cost of replayed calls (not spent)
  status            TEXT NOT NULL,      -- 'running' | 'passed' | 'failed'
  replay_of         INTEGER REFERENCES eval_runs(id), -- run answered from (--replay)
  recorded          INTEGER NOT NULL    -- 1 when the run stored its LLM calls (--record)
);
-- the latest run of a suite, for --baseline last and the report
CREATE INDEX IF NOT EXISTS eval_runs_by_suite ON eval_runs(suite, start_ns);

CREATE TABLE IF NOT EXISTS eval_results (
  id            INTEGER PRIMARY KEY,
  eval_run      INTEGER NOT NULL REFERENCES eval_runs(id),
  case_id       TEXT NOT NULL,
  repeat_index  INTEGER NOT NULL,       -- 0-based, with --repeat
  input         TEXT,                   -- JSON
  expected      TEXT,                   -- JSON
  output        TEXT,                   -- JSON
  scores        TEXT,                   -- JSON array of {name, score, reason}
  pass          INTEGER NOT NULL,       -- 1 / 0
  error         TEXT,                   -- NULL when the case ran to the end
  trace_id      TEXT,                   -- 32 hex: the case's trace
  latency_ms    REAL,
  input_tokens  INTEGER,
  output_tokens INTEGER,
  cost_usd      REAL,                   -- NULL when unknown
  replayed      INTEGER NOT NULL        -- 1 when its LLM answers came from a recording
);
CREATE INDEX IF NOT EXISTS eval_results_by_run ON eval_results(eval_run);

-- The LLM exchanges of a `--record` run, keyed by the SHA-256 (hex) of the
-- normalised request; `--replay` answers from here without the network.
CREATE TABLE IF NOT EXISTS llm_recordings (
  eval_run  INTEGER NOT NULL REFERENCES eval_runs(id),
  hash      TEXT NOT NULL,
  request   TEXT NOT NULL,              -- JSON, as hashed
  response  TEXT NOT NULL,              -- JSON
  call_site TEXT,                       -- "file:line" of the llm.call, for error messages
  PRIMARY KEY (eval_run, hash)
) WITHOUT ROWID;
