/* test_show — `moonspan traces` and `show` over the hand-made stores of
 * views_fixture.h. */
#include "views_fixture.h"

#include "ms_show.h"
#include "ms_traces.h"

/* --- traces ----------------------------------------------------------- */

/* `moonspan traces --limit N [--errors] [--json]` as the command runs it. */
static int traces_write(sqlite3 *db, int limit, int errors_only, int json, FILE *out)
{
    ms_traces_opts o = {.sel = {.errors_only = errors_only}, .limit = limit, .json = json};
    return ms_traces_write(db, &o, out, err_, sizeof err_);
}

/* The ids of `traces --json` in order, each cut to its 8-character
 * prefix, comma-separated. */
static const char *order_of(fixture *fx, enum ms_traces_sort sort, const char *glob)
{
    static char ids[128];
    ms_traces_opts o = {.sel = {.name_glob = glob}, .limit = 10, .sort = sort, .json = 1};
    CAPTURE(fx, ms_traces_write(fx->db, &o, out, err_, sizeof err_));
    if (rc_)
        fail_msg("traces: %s", err_);
    ids[0] = 0;
    for (const char *p = fx->out; (p = strstr(p, "\"trace_id\":\"")); p += 12)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%.8s", ids[0] ? "," : "", p + 12);
    return ids;
}

/* --sort cost: T1..T5 cost 0.01, 0.02, unknown, unknown, 0.04. (Their
 * durations grow with their start, so --sort duration is checked where
 * they do not: select_spec.lua.) */
static void test_traces_sort(void **state)
{
    fixture *fx = *state;
    assert_string_equal(order_of(fx, MS_TRACES_BY_START, NULL),
                        "cccc4444,bbbb3333,abcd2222,aaaa1111,aaaa0000");
    /* unknown cost last, newest first among them */
    assert_string_equal(order_of(fx, MS_TRACES_BY_COST, "answer*"),
                        "cccc4444,aaaa1111,aaaa0000,abcd2222");
    assert_string_equal(order_of(fx, MS_TRACES_BY_COST, NULL),
                        "cccc4444,aaaa1111,aaaa0000,bbbb3333,abcd2222");
}

/* The UI's page (ms_traces_opts.page): the total the selection picks,
 * whatever the limit and offset; the rows after the offset in order;
 * run_id null for traces no process recorded (the fixture's rows have
 * none). */
static void test_traces_page(void **state)
{
    fixture *fx = *state;
    ms_traces_opts o = {.limit = 2, .offset = 1, .json = 1, .page = 1};
    CAPTURE(fx, ms_traces_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    assert_non_null(strstr(fx->out, "{\"total\":5,\"eval_traces_left_out\":0,\"traces\":[{\"trace_id\":\"" T4_ID));
    assert_non_null(strstr(fx->out, "\"trace_id\":\"" T3_ID));
    assert_null(strstr(fx->out, T5_ID));
    assert_null(strstr(fx->out, T2_ID));
    assert_non_null(strstr(fx->out, "\"run_id\":null}"));
    assert_string_equal(fx->out + strlen(fx->out) - 3, "]}\n");
    /* a filter: the total is the filter's; past the end, no rows */
    o = (ms_traces_opts){.sel = {.errors_only = 1}, .limit = 10, .offset = 5, .json = 1, .page = 1};
    CAPTURE(fx, ms_traces_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    assert_string_equal(fx->out, "{\"total\":2,\"eval_traces_left_out\":0,\"traces\":[]}\n");
    /* an eval process's traces are left out, and counted as such */
    exec_sql(fx->db, "INSERT INTO runs (id, script, args, host_version, start_ns, pid)"
                     " VALUES (9, 'suite.lua', '[]', 'test', 0, 1);"
                     "UPDATE traces SET run_id = 9 WHERE trace_id IN ('" T1_ID "', '" T2_ID "');"
                     "INSERT INTO eval_runs (id, run_id, suite, suite_file, start_ns, config, status, recorded)"
                     " VALUES (70, 9, 's', 's.lua', 0, '{}', 'passed', 0)");
    o = (ms_traces_opts){.limit = 1, .json = 1, .page = 1, .sort = MS_TRACES_BY_COST};
    CAPTURE(fx, ms_traces_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    assert_non_null(strstr(fx->out, "{\"total\":3,\"eval_traces_left_out\":2,\"traces\":[{\"trace_id\":\"" T5_ID));
    o.sel.evals = MS_EVALS_ONLY;
    CAPTURE(fx, ms_traces_write(fx->db, &o, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    assert_non_null(strstr(fx->out, "{\"total\":2,\"eval_traces_left_out\":0,\"traces\":[{\"trace_id\":\"" T2_ID));
    assert_non_null(strstr(fx->out, "\"run_id\":9}"));
}

static void test_traces_list(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    CAPTURE(fx, traces_write(fx->db, 10, 0, 0, out));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    /* newest first */
    const char *p5 = strstr(t, T5_ID), *p4 = strstr(t, T4_ID), *p3 = strstr(t, T3_ID);
    const char *p2 = strstr(t, T2_ID), *p1 = strstr(t, T1_ID);
    assert_true(p5 && p4 && p3 && p2 && p1);
    assert_true(p5 < p4 && p4 < p3 && p3 < p2 && p2 < p1);
    has(t, T1_ID "  answer_question  2024-05-01T00:00:10Z      100 ms           100/20"
           "      $0.0100  ok\n");
    /* unknown cost is "-", never $0 */
    has(t, T3_ID "  answer_question  2024-05-02T00:01:40Z      300 ms           300/60"
           "            -  ok\n");
    has(t, T4_ID "  batch_eval       2024-06-15T00:00:00Z      400 ms              0/0"
           "            -  error\n");

    CAPTURE(fx, traces_write(fx->db, 2, 0, 0, out));
    assert_int_equal(rc_, 0);
    has(fx->out, T5_ID);
    has(fx->out, T4_ID);
    hasnt(fx->out, T3_ID);

    CAPTURE(fx, traces_write(fx->db, 10, 1, 1, out));
    assert_int_equal(rc_, 0);
    const char *j = fx->out;
    assert_int_equal(j[0], '[');
    has(j, "{\"trace_id\":\"" T4_ID "\",\"name\":\"batch_eval\",\"start_ns\":1718409600000000000,"
           "\"start\":\"2024-06-15T00:00:00Z\",\"duration_ms\":400,\"input_tokens\":0,"
           "\"output_tokens\":0,\"cost_usd\":null,\"unknown_cost_calls\":0,"
           "\"status\":\"error\",\"error_count\":2,\"span_count\":2,"
           "\"session\":null,\"user\":null,\"tags\":null,\"run_id\":null}");
    has(j, T2_ID);
    hasnt(j, T1_ID);
    hasnt(j, T5_ID);
    assert_true(strstr(j, T4_ID) < strstr(j, T2_ID));
}

static void test_traces_empty(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, traces_write(fx->db, 10, 0, 0, out));
    assert_int_equal(rc_, 0);
    has(fx->out, "no traces recorded yet");
    CAPTURE(fx, traces_write(fx->db, 10, 0, 1, out));
    assert_int_equal(rc_, 0);
    assert_string_equal(fx->out, "[]\n");
}

/* --- show ------------------------------------------------------------- */

static void test_show_tree(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    /* unique prefix, any case */
    CAPTURE(fx, ms_trace_show(fx->db, "AAAA0", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "answer_question  trace " T1_ID "\n");
    has(t, "start 2024-05-01T00:00:10Z   duration 100 ms   tokens 100 in / 20 out"
           "   cost $0.0100   status ok");
    /* children by start: search (+1 ms) before generate (+20 ms) before
     * rerank (+80 ms), although generate was stored first */
    const char *se = strstr(t, "\n  search"), *ge = strstr(t, "\n  generate");
    const char *re = strstr(t, "\n  rerank");
    assert_true(se && ge && re && se < ge && ge < re);
    has(t, "100/20 tok");
    has(t, "    * event cache_hit {\"k\":5}\n");

    /* error, retries */
    CAPTURE(fx, ms_trace_show(fx->db, "aaaa1111", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "status error (1 error)");
    has(fx->out, "error  retries 2 (failed)  RateLimit: too many requests\n");

    /* estimated tokens, unpriced call */
    CAPTURE(fx, ms_trace_show(fx->db, "abcd", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "300/60 tok (est)");
    has(fx->out, "cost ?");
    has(fx->out, "retries 1 (succeeded)");
    has(fx->out, "cost unknown for 1 call");

    /* the manual error event sits under the root */
    CAPTURE(fx, ms_trace_show(fx->db, T4_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "  * ERROR (ctx:add_error) manual: wrong answer\n");
    has(fx->out, "  judge");
}

static void test_show_json(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *j = fx->out;
    has(j, "{\"trace_id\":\"" T1_ID "\",\"name\":\"answer_question\"");
    has(j, "\"spans\":[{\"span_id\":\"000000000000000a\",\"parent_id\":null,"
           "\"name\":\"answer_question\",\"kind\":\"trace\"");
    /* nested: the root's children array holds search, generate, rerank */
    has(j, "\"children\":[{\"span_id\":\"000000000000000c\",\"parent_id\":\"000000000000000a\","
           "\"name\":\"search\"");
    has(j, "\"events\":[{\"name\":\"cache_hit\",\"time_ns\":1714521610002000000,"
           "\"offset_ms\":2,\"attrs\":{\"k\":5}}]");
    has(j, "\"provider\":\"mock\",\"model\":\"mock-1\",\"input_tokens\":100,"
           "\"output_tokens\":20");
    assert_true(strstr(j, "\"name\":\"search\"") < strstr(j, "\"name\":\"generate\""));
    /* the spans, then the eval result: null, as this is no eval case */
    const char *tail = "],\"eval\":null}\n";
    assert_true(strlen(j) > strlen(tail));
    assert_string_equal(j + strlen(j) - strlen(tail), tail);
}

/* What the web UI's waterfall reads: each span's offset from the trace's
 * start (a double holds it exactly where start_ns would not), an event's
 * offset and the error's traceback, null when none. */
static void test_show_json_offsets_traceback(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T2_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *j = fx->out;
    has(j, "\"name\":\"answer_question\",\"kind\":\"trace\",\"start_ns\":1714525200000000000,"
           "\"offset_ms\":0,\"duration_ms\":200,");
    has(j, "\"name\":\"search\",\"kind\":\"span\",\"start_ns\":1714525200001000000,"
           "\"offset_ms\":1,\"duration_ms\":20,");
    has(j, "\"name\":\"generate\",\"kind\":\"llm\",\"start_ns\":1714525200030000000,"
           "\"offset_ms\":30,\"duration_ms\":150,");
    has(j, "\"error\":{\"type\":\"RateLimit\",\"message\":\"too many requests\","
           "\"traceback\":\"stack traceback:\\n\\tgen.lua:3: in main chunk\"}");
    /* it retried without waiting; search neither retried nor waited */
    has(j, "\"retries\":2,\"backoff_ms\":null,\"retry_succeeded\":false");
    has(j, "\"retries\":0,\"backoff_ms\":null,\"retry_succeeded\":null");

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"events\":[{\"name\":\"cache_hit\",\"time_ns\":1714521610002000000,"
                 "\"offset_ms\":2,\"attrs\":{\"k\":5}}]");

    /* a raised error with no traceback stored says null */
    CAPTURE(fx, ms_trace_show(fx->db, T4_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"message\":\"too many requests\",\"traceback\":null}");
}

/* The time a span's retries waited, in ms (U1's call: 30 ms). */
static void test_show_json_backoff(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0001", 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"name\":\"call\",\"kind\":\"llm\",\"start_ns\":1714521600001000000,"
                 "\"offset_ms\":1,");
    has(fx->out, "\"retries\":1,\"backoff_ms\":30,\"retry_succeeded\":true");
}

static void test_show_lookup_errors(void **state)
{
    fixture *fx = *state;
    err_[0] = 0;
    /* a prefix of two ids: both listed, numbered for --pick */
    CAPTURE(fx, ms_trace_show(fx->db, "aaaa", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "2 traces of 2 different ids match the prefix aaaa; give more"
                              " characters, or pick one with `moonspan show aaaa --pick N`");
    has(fx->out, "  1    " T1_ID "  answer_question       2024-05-01T00:00:10Z      100 ms"
                 "  ok           000000000000000a\n");
    has(fx->out, "  2    " T2_ID "  answer_question       2024-05-01T01:00:00Z      200 ms"
                 "  error        0000000000000014\n");
    ms_show_opts o = {.id = "aaaa", .pick = 2};
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "answer_question  trace " T2_ID "  (--pick 2 of 2 matching traces)\n");

    CAPTURE(fx, ms_trace_show(fx->db, "ffff", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "no trace with id ffff; list ids with `moonspan traces`");

    CAPTURE(fx, ms_trace_show(fx->db, "abc", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, -1);
    has(err_, "4 to 32 hex characters");

    CAPTURE(fx, ms_trace_show(fx->db, "zzzz", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, -1);
    has(err_, "not hex");
}

static void test_show_remote_parent_root(void **state)
{
    /* the root of a joined run has a parent outside the trace: the tree
     * still starts at it; a span its own parent hangs off the root
     * instead of vanishing */
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\n\njoined ");
    has(fx->out, "\n  step ");
    has(fx->out, "\n  selfish ");
    has(fx->out, "cost -   status ok");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"parent_id\":\"00000000000003e7\",\"name\":\"joined\"");
}

/* --- statuses and manual errors in show and traces ---------------------- */

static void test_show_manual_error_event(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T4_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"events\":[{\"name\":\"error\",\"time_ns\":1718409600300000000,\"offset_ms\":300,\"attrs\":null,"
                 "\"error_type\":\"manual\",\"error_message\":\"wrong answer\"}]");
    /* other events carry no error keys */
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    hasnt(fx->out, "error_type");
}

static void test_show_and_traces_cut_short(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0003", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "   status interrupted (cut short by SIGINT/SIGTERM; not an error)\n");
    has(t, "\nu  ");
    has(t, "  interrupted\n  work ");
    has(t, "  interrupted\n  call ");
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0004", 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "   status incomplete (still open when the run ended)\n");
    has(fx->out, "\n    call ");
    CAPTURE(fx, ms_trace_show(fx->db, "dddd0004", 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"status\":\"incomplete\",\"error_count\":0");

    CAPTURE(fx, traces_write(fx->db, 10, 0, 0, out));
    assert_int_equal(rc_, 0);
    has(fx->out, "dddd0003000000000000000000000003  u     2024-05-01T00:00:02Z     5000 ms"
                 "             10/1    $0.001000  interrupted\n");
    has(fx->out, "  incomplete\n");
    /* --errors lists failed requests: interruptions are not failures */
    CAPTURE(fx, traces_write(fx->db, 10, 1, 0, out));
    assert_int_equal(rc_, 0);
    has(fx->out, "dddd0002");
    hasnt(fx->out, "dddd0003");
    hasnt(fx->out, "dddd0004");
}

static void test_show_reads_an_upgraded_v2_store(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    has(t, "   status error (1 error)\n");
    /* the root row agrees with the header, not with the stored root span */
    has(t, "\njudged ");
    hasnt(t, "  ok\n  * ERROR");
    has(t, "  error\n  * ERROR (ctx:add_error) manual: old way\n");
    has(t, "    * event retry {\"attempt\":1}\n");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"name\":\"judged\",\"kind\":\"trace\",\"start_ns\":1714521600000000000,"
                 "\"offset_ms\":0,\"duration_ms\":100,\"status\":\"error\"");
    /* upgraded: the JSON of the old event is now its typed error */
    has(fx->out, "\"name\":\"error\",\"time_ns\":1714521600050000000,\"offset_ms\":50,\"attrs\":null,"
                 "\"error_type\":\"manual\",\"error_message\":\"old way\"}");
}

/* --- traces sharing one id (TRACEPARENT) --------------------------------- */

#define SHARED_ID "5ea7ed00000000000000000000000001"

/* Three runs that joined one outer trace: rows 1..3, with rows 2 and 3
 * starting at the same nanosecond and row 1 after both. */
static int shared_id_dataset(void **state)
{
    open_db(state);
    sqlite3 *db = ((fixture *)*state)->db;
    exec_sql(db, "BEGIN");
    static const struct { const char *name; int64_t start; const char *status; } t[] = {
        {"late", D1 + 9 * SEC, "ok"}, {"early_a", D1, "error"}, {"early_b", D1, "ok"}};
    for (int i = 0; i < 3; i++) {
        span(db, i + 1, 100 + i, "777", t[i].name, "trace", t[i].start, 10 * (i + 1), t[i].status,
             0, NULL, NULL, "NULL", "NULL", "NULL", "NULL", 0, "NULL");
        trace_row(db, i + 1, SHARED_ID, t[i].name, t[i].start, 10 * (i + 1), t[i].status, 0, 1,
                  i + 1, 0, 0, "NULL", 0);
    }
    exec_sql(db, "COMMIT");
    return seal(state);
}

static void test_show_traces_sharing_an_id(void **state)
{
    fixture *fx = *state;
    char *list = NULL;
    size_t listlen = 0;
    FILE *matches = open_memstream(&list, &listlen);
    assert_non_null(matches);
    ms_show_opts o = {.id = SHARED_ID};
    CAPTURE(fx, ms_show_write(fx->db, &o, out, matches, err_, sizeof err_));
    assert_int_equal(fclose(matches), 0);
    /* nothing shown, the three listed by start then row, the fix named */
    assert_int_equal(rc_, 1);
    assert_int_equal(fx->outlen, 0);
    assert_string_equal(err_, "3 traces share the id " SHARED_ID " (a run that joined an outer"
                              " trace through TRACEPARENT); pick one with `moonspan show "
                              SHARED_ID " --pick N`");
    has(list, "  #    trace id                          name                  start ");
    const char *a = strstr(list, "  1    " SHARED_ID "  early_a  ");
    const char *b = strstr(list, "  2    " SHARED_ID "  early_b  ");
    const char *c = strstr(list, "  3    " SHARED_ID "  late  ");
    if (!a || !b || !c)
        fail_msg("not listed in order:\n%s", list);
    has(list, "  error        0000000000000065\n");
    free(list);

    o.json = 1;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    has(fx->out, "{\"error\":\"3 traces share the id " SHARED_ID);
    has(fx->out, "\"count\":3,\"matches\":[{\"pick\":1,\"trace_id\":\"" SHARED_ID "\","
                 "\"name\":\"early_a\",\"start_ns\":1714521600000000000,"
                 "\"start\":\"2024-05-01T00:00:00Z\",\"duration_ms\":20,\"status\":\"error\","
                 "\"root_span_id\":\"0000000000000065\"},{\"pick\":2,");
    has(fx->out, "\"pick\":3,\"trace_id\":\"" SHARED_ID "\",\"name\":\"late\"");

    /* --pick N shows the Nth as listed */
    o.pick = 3;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "\"trace_id\":\"" SHARED_ID "\",\"name\":\"late\"");
    has(fx->out, "\"pick\":3,\"matching_traces\":3,\"spans\":[");
    o.json = 0;
    o.pick = 2;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, stderr, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, "early_b  trace " SHARED_ID "  (--pick 2 of 3 matching traces)\n");
    has(fx->out, "\n\nearly_b ");

    /* beyond the matches: listed again, nothing shown */
    o.pick = 4;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, out, err_, sizeof err_));
    assert_int_equal(rc_, 1);
    assert_string_equal(err_, "--pick 4: only 3 traces match " SHARED_ID "; pick one of those listed");
    has(fx->out, "  3    " SHARED_ID "  late  ");
    hasnt(fx->out, "trace " SHARED_ID);
}

/* --- hostile text ------------------------------------------------------ */

static void test_views_escape_hostile_text(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, traces_write(fx->db, 10, 0, 0, out));
    assert_int_equal(rc_, 0);
    no_terminal_controls(fx->out, fx->outlen, "traces");
    has(fx->out, "req" HOSTILE_SHOWN);

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_terminal_controls(fx->out, fx->outlen, "show");
    has(fx->out, "req" HOSTILE_SHOWN "  trace " T1_ID "\n");
    has(fx->out, "  step" HOSTILE_SHOWN);
    has(fx->out, "type" HOSTILE_SHOWN ": line one msg" HOSTILE_SHOWN "\n");
    has(fx->out, "ev" HOSTILE_SHOWN);
    has(fx->out, "\\u{009b}2J \\u{202e}");
}

/* HOSTILE as a script's result is stored: in JSON, whose strings escape C0
 * controls (as cjson does) and keep C1 and bidi characters. */
#define JHOSTILE "\\u001b]0;pwned\\u0007\\u001b[2J\xc2\x9b" "2J\xe2\x80\xae"
#define JHOSTILE_SHOWN "\\u001b]0;pwned\\u0007\\u001b[2J\\u{009b}2J\\u{202e}"

/* The hostile trace made an eval case: its attributes name the eval run
 * (how show finds the result), and every text of the result is hostile. */
static void make_hostile_case(fixture *fx)
{
    exec_sql(fx->db, "UPDATE traces SET attrs = '{\"eval_run\":1,\"case_id\":\"c\"}'");
    exec_sql(fx->db, "UPDATE eval_results SET repeat_index = 2,"
                     " input = '{\"q\":\"in" JHOSTILE "\"}', expected = '\"exp" JHOSTILE "\"',"
                     " output = 'not json" HOSTILE "', latency_ms = 12.5, cost_usd = NULL,"
                     " scores = '[{\"name\":\"exact" JHOSTILE "\",\"score\":0.25,\"pass\":false,"
                     "\"reason\":\"why" JHOSTILE "\"},{\"name\":\"ok\",\"score\":1,\"pass\":true}]'");
}

static void test_show_eval_case(void **state)
{
    fixture *fx = *state;
    make_hostile_case(fx);
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    const char *t = fx->out;
    no_terminal_controls(t, fx->outlen, "show of a case");
    has(t, "  eval case FAILED: suite suite" HOSTILE_SHOWN ", case case" HOSTILE_SHOWN
           ", repeat 2, eval run 1\n");
    has(t, "    input     {\"q\":\"in" JHOSTILE_SHOWN "\"}\n");
    has(t, "    expected  \"exp" JHOSTILE_SHOWN "\"\n");
    /* a stored output that is not JSON is shown as a JSON string */
    has(t, "    output    \"not json" JHOSTILE_SHOWN "\"\n");
    has(t, "    score     exact" HOSTILE_SHOWN "  FAIL  0.25  why" HOSTILE_SHOWN "\n");
    has(t, "    score     ok  pass  1\n");
    has(t, "    error     boom" HOSTILE_SHOWN "\n");
    /* the result comes before the tree */
    assert_true(strstr(t, "eval case FAILED") < strstr(t, "  step"));

    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_c0_controls(fx->out, fx->outlen, "show --json of a case");
    has(fx->out, ",\"eval\":{\"suite\":\"suite\\u001b]0;pwned");
    has(fx->out, "\"eval_run\":1,\"case_id\":\"case\\u001b");
    has(fx->out, "\"repeat_index\":2,\"pass\":false,\"input\":{\"q\":\"in\\u001b");
    has(fx->out, "\"output\":\"not json\\u001b");
    has(fx->out, "\"scores\":[{\"name\":\"exact\\u001b");
    has(fx->out, "\"error\":\"boom\\u001b");
    has(fx->out, "\"latency_ms\":12.5,\"cost_usd\":null,\"replayed\":false}}\n");
}

/* A result whose trace does not name its eval run is not looked for:
 * show stays one query away from scanning eval_results. */
static void test_show_eval_needs_the_run_attribute(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 0, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    hasnt(fx->out, "eval case");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    has(fx->out, ",\"eval\":null}\n");
}

static void test_json_views_escape_hostile_text(void **state)
{
    fixture *fx = *state;
    CAPTURE(fx, traces_write(fx->db, 10, 0, 1, out));
    assert_int_equal(rc_, 0);
    no_c0_controls(fx->out, fx->outlen, "traces --json");
    has(fx->out, "\"name\":\"req\\u001b]0;pwned\\u0007\\u001b[2J");
    CAPTURE(fx, ms_trace_show(fx->db, T1_ID, 1, out, err_, sizeof err_));
    assert_int_equal(rc_, 0);
    no_c0_controls(fx->out, fx->outlen, "show --json");
    /* JSON leaves C1 and bidi characters to the program that reads it */
    has(fx->out, "\"name\":\"step\\u001b]0;pwned\\u0007\\u001b[2J");
}

/* --- fine traces: folding, --depth, --min-ms, units ------------------ */

#define X "\xc3\x97"  /* the fold mark, × */
#define SIGMA "\xce\xa3"
#define MU "\xc2\xb5"

static void show_with(fixture *fx, const char *id, int depth, double min_ms, int all, int json)
{
    ms_show_opts o = {.id = id, .max_depth = depth, .min_ms = min_ms, .all = all, .json = json};
    err_[0] = 0;
    CAPTURE(fx, ms_show_write(fx->db, &o, out, out, err_, sizeof err_));
    if (rc_ != 0)
        fail_msg("show failed: %s", err_);
}

/* Siblings of one name are one line with their count, total and spread,
 * placed where the first was; their children merge the same way. */
static void test_show_folds_repeated_siblings(void **state)
{
    fixture *fx = *state;
    show_with(fx, T1_ID, 0, 0, 0, 0);
    const char *t = fx->out;
    has(t, "\n  rerank              60.0 ms                                         ok\n"
           "    score_doc " X "3    " SIGMA " 30.0 ms                                         "
           "p50 10.0 ms  p95 10.0 ms  max 10.0 ms\n"
           "      tokenize " X "3   " SIGMA " 6.00 ms                                         "
           "p50 2.00 ms  p95 2.00 ms  max 2.00 ms\n"
           /* rerank's own tokenize is a line of its own */
           "    tokenize          5.00 ms                                         ok\n");
    /* embed's two tokenize, 4 and 6 ms: p50 5, p95 4 + 0.95 x 2 */
    has(t, "\n    tokenize " X "2     " SIGMA " 10.0 ms                                         "
           "p50 5.00 ms  p95 5.90 ms  max 6.00 ms\n"
           "    chat mock         10.0 ms  100/20 tok              $0.0100        ok\n");
    hasnt(t, "\n    score_doc  ");

    /* --all: one line per span */
    show_with(fx, T1_ID, 0, 0, 1, 0);
    hasnt(fx->out, X);
    const char *p = fx->out;
    int n = 0;
    while ((p = strstr(p, "\n    score_doc ")))
        n++, p++;
    assert_int_equal(n, 3);

    /* JSON stays whole: three score_doc objects */
    show_with(fx, T1_ID, 0, 0, 0, 1);
    p = fx->out;
    n = 0;
    while ((p = strstr(p, "\"name\":\"score_doc\"")))
        n++, p++;
    assert_int_equal(n, 3);
}

/* --depth N: spans down to depth N (the request is 0), each line saying
 * how many spans are below it. */
static void test_show_depth(void **state)
{
    fixture *fx = *state;
    show_with(fx, T1_ID, 1, 0, 0, 0);
    const char *t = fx->out;
    has(t, "\n  rerank  ");
    has(t, "ok  (+7 spans below)\n");
    has(t, "ok  (+3 spans below)\n");
    has(t, "ok  (+2 spans below)\n");
    hasnt(t, "score_doc");
    hasnt(t, "tokenize");
    show_with(fx, T1_ID, 2, 0, 0, 0);
    has(fx->out, "score_doc " X "3");
    has(fx->out, "(+3 spans below)"); /* the tokenize under the score_docs */
    hasnt(fx->out, "      tokenize");
}

/* --min-ms X: shorter spans are counted under their parent, with what
 * they hold. */
static void test_show_min_ms(void **state)
{
    fixture *fx = *state;
    show_with(fx, T1_ID, 0, 5, 0, 0);
    const char *t = fx->out;
    /* the 2 ms tokenize under the score_docs go; rerank's 5 ms one stays */
    has(t, "score_doc " X "3");
    has(t, "\n      ... 3 spans shorter than 5.00 ms hidden\n");
    has(t, "\n    tokenize         5.00 ms  ");
    /* embed: 4 ms goes, 6 ms stays */
    has(t, "\n    tokenize         6.00 ms  ");
    has(t, "ok\n    ... 1 span shorter than 5.00 ms hidden\n  parallel");
    /* the whole of rerank, with the 7 spans inside it */
    show_with(fx, T1_ID, 0, 61, 0, 0);
    has(fx->out, "\n  ... 3 spans shorter than 61.0 ms hidden (and 12 inside them)\n");
}

/* A 3 us span is 3.00 us, not 0.00 ms. */
static void test_show_microseconds(void **state)
{
    fixture *fx = *state;
    show_with(fx, T2_ID, 0, 0, 0, 0);
    has(fx->out, "\n  tick           3.00 " MU "s  ");
    CAPTURE(fx, traces_write(fx->db, 10, 0, 0, out));
    has(fx->out, "  2024-05-01T00:00:01Z     5.00 ms  ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_traces_list, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_traces_sort, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_traces_page, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_traces_empty, open_db, close_db),
        cmocka_unit_test_setup_teardown(test_show_tree, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_json, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_json_offsets_traceback, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_json_backoff, cut_short_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_lookup_errors, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_remote_parent_root, joined_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_manual_error_event, dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_and_traces_cut_short, cut_short_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_reads_an_upgraded_v2_store, v2_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_traces_sharing_an_id, shared_id_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_views_escape_hostile_text, hostile_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_folds_repeated_siblings, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_depth, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_min_ms, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_microseconds, nested_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_json_views_escape_hostile_text, hostile_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_eval_case, hostile_dataset, close_db),
        cmocka_unit_test_setup_teardown(test_show_eval_needs_the_run_attribute, hostile_dataset, close_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
