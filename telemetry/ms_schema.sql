-- moonspan store, schema version 6 (PRAGMA user_version = 6,
-- PRAGMA application_id = 0x4d6f6f6e, "Moon").
--
-- This text creates a new store. An older store is brought forward on
-- open for writing by the steps in ms_store.c (MIGRATE), which change what
-- CREATE ... IF NOT EXISTS cannot (the v4 step repacks every trace's spans,
-- ms_migrate.c) and then run this text, whose IF NOT EXISTS skips what is
-- already there.
--
-- Shape: a trace is one row; its spans are one BLOB in the packed encoding
-- of telemetry/ms_pack.h (about 10 bytes for an empty span), so writing a
-- trace is one insert into one b-tree and reading one is one row. A trace
-- written while it was open (long, or long-running) has its earlier parts
-- in trace_parts. The spans and span_events tables of older versions are
-- virtual tables now (telemetry/ms_vtab.c): moonspan registers them on its
-- connections, and `.load`ing build/moonspan_sql gives them to the sqlite3
-- CLI and other SQLite clients.
-- Ids: trace ids are 32 lowercase hex characters; span ids are 64-bit
-- integers (printf('%016x', span_id) gives the W3C hex form), derived from
-- the trace's span_salt and the span's index unless the BLOB carries one.

CREATE TABLE IF NOT EXISTS runs (
  id           INTEGER PRIMARY KEY,
  script       TEXT NOT NULL,           -- path as given to `moonspan run`
  args         TEXT NOT NULL,           -- JSON array of the script's arguments
  host_version TEXT NOT NULL,
  start_ns     INTEGER NOT NULL,        -- Unix epoch nanoseconds
  pid          INTEGER NOT NULL,
  -- v5: how the run recorded and what its telemetry did and cost
  -- (NULL until the run ends and for runs of older versions)
  end_ns             INTEGER,           -- Unix epoch nanoseconds
  level              TEXT,              -- 'info' | 'debug' | 'trace' at the start
  fold_above         INTEGER,           -- --fold N; NULL when off
  sample_rate        REAL,              -- --sample RATE; 1 when off
  spans_kept         INTEGER,           -- spans stored
  fold_repetitions   INTEGER,           -- repetitions recorded in folds instead of as spans
  spans_skipped      INTEGER,           -- span() calls below the level: not recorded
  traces_sampled_out INTEGER,           -- traces stored as their summary only
  spans_sampled_out  INTEGER,           -- the spans those traces dropped
  ns_per_span        REAL,              -- what span() costs the script over a plain call
  ns_per_fold        REAL,              -- of its body (recorded / folded / below the level)
  ns_per_skip        REAL,              -- as measured when the run started
  telemetry_ns       INTEGER            -- their sum over the run: the script's time in telemetry
);

CREATE TABLE IF NOT EXISTS traces (
  id                 INTEGER PRIMARY KEY,
  trace_id           TEXT NOT NULL,     -- 32 hex
  run_id             INTEGER REFERENCES runs(id),
  name               TEXT NOT NULL,
  start_ns           INTEGER NOT NULL,  -- Unix epoch nanoseconds
  duration_ns        INTEGER NOT NULL,
  status             TEXT NOT NULL,     -- 'ok' | 'error' | 'interrupted' (SIGINT/SIGTERM) | 'incomplete'
                                        -- (still open when the run ended: os.exit, an abandoned
                                        -- coroutine, or the process died while writing it in parts)
  error_count        INTEGER NOT NULL,  -- errors raised in this trace (each counted once) + ctx:add_error calls
  span_count         INTEGER NOT NULL,  -- including the root span
  input_tokens       INTEGER NOT NULL,  -- llm spans + ctx:add_tokens
  output_tokens      INTEGER NOT NULL,
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  cost_usd           REAL,              -- sum over priced llm calls; NULL when there was no priced call
  unknown_cost_calls INTEGER NOT NULL,  -- llm calls whose model has no price
  attrs              TEXT,              -- JSON object of the root span's attributes, or NULL
  replayed_cost_usd  REAL,              -- v2: the part of cost_usd whose calls were replayed
                                        -- from a recording (not spent); NULL when no call was
  span_salt          INTEGER NOT NULL DEFAULT 0, -- v4: span ids derive from it
  parent_span        INTEGER,           -- v4: the root's parent span id when the trace joined an
                                        -- outer one (TRACEPARENT); NULL otherwise
  parts              INTEGER NOT NULL DEFAULT 0, -- v4: its rows in trace_parts (0: none)
  spans              BLOB,              -- v4: the packed spans not in trace_parts (ms_pack.h);
                                        -- NULL while a trace written in parts is still open
                                        -- and for a trace sampled out
  sampled_out        INTEGER NOT NULL DEFAULT 0, -- v5: 1 when sampling kept this row only (--sample)
  -- v6: who the trace was for: the options session and user and tags of a trace call;
  -- the same values stay in attrs as attributes of the root span
  session            TEXT,              -- v6: the session id; NULL when none was given
  user_id            TEXT,              -- v6: the user id; NULL when none was given
  tags               TEXT               -- v6: JSON array of the tags; NULL when none were given
);
-- Time order (the report's --since) and, covered in the same entries, the
-- trace ids: `show PREFIX` scans this narrow index instead of the rows.
-- Both grow at their end as traces come in; an index on the random ids
-- alone would take a random page per insert and slow writing down as the
-- store grows (v4; replaces traces_by_start and traces_by_trace_id).
CREATE INDEX IF NOT EXISTS traces_by_start_id ON traces(start_ns, trace_id);

-- v4: the earlier parts of a trace written while it was open, in order.
CREATE TABLE IF NOT EXISTS trace_parts (
  trace_row INTEGER NOT NULL,           -- traces.id
  seq       INTEGER NOT NULL,           -- 0, 1, ...
  spans     BLOB NOT NULL,              -- packed (ms_pack.h): the spans that had ended
  PRIMARY KEY (trace_row, seq)
);

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
  repeat_index  INTEGER NOT NULL,       -- 1 for a case's first run; K with --repeat K
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

-- v5: the profiler (`moonspan run --profile`). Self time sampled in each
-- function while a span was the innermost open span of the running
-- coroutine: time in a child span is the child's. A trace's rows are
-- written with its spans, in the same transaction (a span's rows with the
-- part that holds the span). Only profiled runs have rows.
CREATE TABLE IF NOT EXISTS span_profiles (
  trace_row  INTEGER NOT NULL,          -- traces.id
  span_index INTEGER NOT NULL,          -- spans.span_index of the span (0: the root)
  function   TEXT NOT NULL,             -- the function's name as the call site names it (a global's
                                        -- name when called from C), else 'function <file:line>' as
                                        -- Lua's tracebacks say, 'main chunk', or a C function's name
                                        -- ('[C]' when it has none)
  source     TEXT NOT NULL,             -- its chunk as Lua shows it ('script.lua'); '[C]' for C
  line       INTEGER NOT NULL,          -- the line it is defined on; 0 a main chunk, -1 a C function
  samples    INTEGER NOT NULL,          -- CPU-time samples that found it running (self time)
  self_ns    INTEGER NOT NULL,          -- samples x the sampling period
  PRIMARY KEY (trace_row, span_index, function, source, line)
) WITHOUT ROWID;
