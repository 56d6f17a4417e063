/* store_fixture — a new, empty store in a temporary file, made by
 * ms_store_open as moonspan makes one (the current schema), for the unit
 * tests that fill it through SQL or the telemetry API themselves
 * (test_select.c, test_runs.c, test_flaky.c, test_evals.c); the readers'
 * hand-made older stores are views_fixture.h. Included by one test file
 * each.
 *
 * A test's setup calls store_fixture_open, fills fx->db and stores fx in
 * *state; store_fixture_close is the teardown: it closes the store and
 * removes the file with its -wal and -shm. eval_run and eval_result add
 * eval rows through the API moonspan eval writes them with (ms_evals.h). */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include "checks.h"

#include <unistd.h>

#include "ms_clock.h"
#include "ms_evals.h"
#include "ms_store.h"

typedef struct fixture {
    char path[64];
    ms_store *store;
    sqlite3 *db;    /* the store's own connection */
    char *out;      /* a test's captured output, freed at teardown */
    size_t outlen;
} fixture;

/* A new store at /tmp/ms_test_<name>_XXXXXX; fails the test if it cannot
 * be made. */
FIXTURE fixture *store_fixture_open(const char *name)
{
    ms_clock_init();
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->path, sizeof fx->path, "/tmp/ms_test_%s_XXXXXX", name);
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    close(fd);
    unlink(fx->path); /* a new store, made by ms_store_open */
    char err[512];
    if (ms_store_open(fx->path, MS_STORE_WRITE, &fx->store, err, sizeof err))
        fail_msg("%s", err);
    fx->db = ms_store_db(fx->store);
    return fx;
}

FIXTURE int store_fixture_close(void **state)
{
    fixture *fx = *state;
    ms_store_close(fx->store);
    char p[96];
    unlink(fx->path);
    snprintf(p, sizeof p, "%s-wal", fx->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", fx->path);
    unlink(p);
    free(fx->out);
    free(fx);
    return 0;
}

/* An eval run of `suite` (suite.lua, threshold 0.9) begun at start_ns;
 * finished one second later with `status` and a summary of one passed
 * case, unless status is NULL (left running). Returns its id. */
FIXTURE int64_t eval_run(sqlite3 *db, const char *suite, int64_t start_ns, const char *status)
{
    char err[512];
    ms_eval_run_info info = {.run_id = 0, .suite = suite, .suite_file = "suite.lua",
                             .start_ns = start_ns, .threshold = 0.9};
    int64_t id;
    if (ms_eval_run_begin(db, &info, &id, err, sizeof err))
        fail_msg("%s", err);
    if (status) {
        ms_eval_summary s = {.end_ns = start_ns + SEC, .cases = 1, .passed = 1, .pass_rate = 1,
                             .p50_ms = 1, .p95_ms = 1, .cost_usd = 0, .replayed_cost_usd = 0,
                             .status = status};
        if (ms_eval_run_finish(db, id, &s, err, sizeof err))
            fail_msg("%s", err);
    }
    return id;
}

/* Case `case_id`, repeat `repeat` of eval run `run_id`: passed or not,
 * 1 ms, cost unknown, no scores, error or trace. */
FIXTURE void eval_result(sqlite3 *db, int64_t run_id, const char *case_id, int64_t repeat, int pass)
{
    char err[512];
    ms_eval_result r = {.case_id = case_id, .repeat_index = repeat, .pass = pass, .latency_ms = 1,
                        .cost_usd = NAN};
    if (ms_eval_result_add(db, run_id, &r, err, sizeof err))
        fail_msg("%s", err);
}

#endif
