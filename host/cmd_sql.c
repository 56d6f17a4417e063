/* `moonspan sql` (one read-only SQL statement over the store) and
 * `moonspan upgrade` (bring an older store to the current layout). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms_query.h"
#include "ms_store.h"

static const char SQL_HELP[] =
    "usage: moonspan sql [--json | --csv] [--db PATH] \"SELECT ...\"\n"
    "\n"
    "Runs one SQL statement over the store, read-only, and prints its rows: an\n"
    "aligned table (long cells cut), or with --json an array of objects, with\n"
    "--csv CSV with a header row. Besides the tables (traces, runs, eval_runs,\n"
    "eval_results, ...) the statement sees `spans` and `span_events`, decoded\n"
    "from each trace's packed spans, e.g.\n"
    "\n"
    "  moonspan sql \"SELECT name, count(*), avg(duration_ns) / 1e6 AS ms FROM spans\n"
    "                GROUP BY name ORDER BY ms DESC\"\n"
    "\n"
    "Every span has its trace's session, user and tags (JSON array), e.g.\n"
    "\n"
    "  moonspan sql \"SELECT user, sum(cost_usd) FROM spans GROUP BY user\"\n"
    "\n"
    "Columns: README, section The store (SQLite schema).\n"
    "\n"
    "Exit status: 0, 1 when the statement is wrong, 2 for bad usage.\n";

static const char UPGRADE_HELP[] =
    "usage: moonspan upgrade [--db PATH]\n"
    "\n"
    "Brings a store written by an older moonspan to the current layout, in\n"
    "place, keeping every trace (version 3 -> 4 repacks every trace's spans, with\n"
    "progress on stderr). One transaction: stopped halfway, the store stays as\n"
    "it was. `run`, `eval` and `test` upgrade a store they write to on their own;\n"
    "`report`, `traces`, `show` and `sql` never write, so they ask for this.\n";

static void progress(const char *what, int64_t done, int64_t total)
{
    fprintf(stderr, "\rmoonspan upgrade: %s %lld/%lld", what, (long long)done, (long long)total);
    if (done >= total)
        fputc('\n', stderr);
}

int ms_cmd_sql(ms_cli *c)
{
    enum ms_query_format format = MS_QUERY_TEXT;
    const char *sql = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(SQL_HELP, stdout);
            return 0;
        }
        if (ms_cli_flag(c, "--json"))
            format = MS_QUERY_JSON;
        else if (ms_cli_flag(c, "--csv"))
            format = MS_QUERY_CSV;
        else if (c->argv[c->i][0] == '-' && c->argv[c->i][1] && !sql)
            ms_cli_unknown(c);
        else if (!sql)
            sql = c->argv[c->i++];
        else
            ms_cli_usage_error(c, "give the statement as one argument, in quotes");
    }
    if (!sql)
        ms_cli_usage_error(c, "missing the SQL statement, e.g. \"SELECT count(*) FROM spans\"");
    ms_cli_refuse_prices(c);
    ms_store *s = ms_cli_open_read(c);
    if (!s)
        return MS_EXIT_USAGE;
    char err[1024];
    int rc = ms_query_write(ms_store_db(s), sql, format, stdout, err, sizeof err);
    return ms_cli_finish_view(c, s, rc, err);
}

int ms_cmd_upgrade(ms_cli *c)
{
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(UPGRADE_HELP, stdout);
            return 0;
        }
        ms_cli_unknown(c);
    }
    char err[1024];
    int64_t before = 0;
    if (ms_store_version(c->db, &before, err, sizeof err) != 0) {
        fprintf(stderr, "moonspan upgrade: %s\n", err);
        return MS_EXIT_USAGE;
    }
    ms_store_set_progress(progress);
    ms_store *s;
    int rc = ms_store_open(c->db, MS_STORE_WRITE, &s, err, sizeof err);
    ms_store_set_progress(NULL);
    if (rc != 0) {
        fprintf(stderr, "moonspan upgrade: %s\n", err);
        return 1;
    }
    ms_store_close(s);
    if (before == MS_SCHEMA_VERSION)
        printf("%s is already at version %d; nothing to do\n", c->db, MS_SCHEMA_VERSION);
    else
        printf("%s upgraded from version %lld to %d\n", c->db, (long long)before, MS_SCHEMA_VERSION);
    return 0;
}
