/* checks — what the unit tests of the views assert with: text present or
 * absent in an output, a JSON number read after an anchor and compared
 * with a tolerance, and SQL run on a fixture's store. Header-only, so
 * every tests/unit/test_*.c stays one program (see the Makefile); included
 * directly or through views_fixture.h or store_fixture.h.
 *
 * JSON is checked by looking up a key after an anchor string and reading
 * the number with strtod, compared with a tolerance: percentiles go
 * through floating point (e.g. 370.00000000000006), so exact text matching
 * would test the last ulp, not the view. */
#ifndef CHECKS_H
#define CHECKS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* each test file uses most of these, not all */
#define FIXTURE static __attribute__((unused))

/* The fixtures' times: stores are filled on 2024-05-01 (UTC) and after. */
#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)
#define D1 (INT64_C(1714521600) * SEC) /* 2024-05-01T00:00:00Z */

/* The document goes to stderr in full: cmocka truncates long messages. */
FIXTURE void has(const char *doc, const char *needle)
{
    if (!strstr(doc, needle)) {
        fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
        fail_msg("missing \"%s\"", needle);
    }
}

FIXTURE void hasnt(const char *doc, const char *needle)
{
    if (strstr(doc, needle)) {
        fprintf(stderr, "---- output ----\n%s\n----------------\n", doc);
        fail_msg("unexpected \"%s\"", needle);
    }
}

/* The number after `"key":` that follows `anchor` (NULL = from the start);
 * NaN for null. Fails the test when either is missing. */
FIXTURE double jnum(const char *doc, const char *anchor, const char *key)
{
    const char *p = anchor ? strstr(doc, anchor) : doc;
    if (!p)
        fail_msg("anchor %s not in %s", anchor, doc);
    char k[96];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(p, k);
    if (!p)
        fail_msg("key %s not after %s in %s", key, anchor ? anchor : "start", doc);
    p += strlen(k);
    if (strncmp(p, "null", 4) == 0)
        return NAN;
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        fail_msg("no number for %s after %s: %.40s", key, anchor ? anchor : "start", p);
    return v;
}

/* cmocka 1.1.5 only compares floats; this keeps double precision and
 * reports both values. */
#define assert_near(a, b, eps)                                              \
    do {                                                                    \
        double a_ = (a), b_ = (b);                                          \
        if (!(fabs(a_ - b_) <= (eps)))                                      \
            fail_msg("%.17g != %.17g (eps %g)", a_, b_, (double)(eps));     \
    } while (0)

/* Equal to within 1e-9, relative above 1 and absolute below. */
FIXTURE void near(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= 1e-9 * fmax(1, fabs(want))))
        fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

#define NEAR(doc, anchor, key, want) near(jnum(doc, anchor, key), want, anchor " " key)

/* Runs `sql` on db; fails the test with SQLite's message and the SQL. */
FIXTURE void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("sql failed: %s\n%s", msg ? msg : "?", sql);
    sqlite3_free(msg);
}

/* The integer in the first column of the one row `sql` gives. */
FIXTURE int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#endif
