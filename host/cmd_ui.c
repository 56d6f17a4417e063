/* `moonspan ui`: the store's traces, checklist, eval runs and comparisons
 * as a local web page, served from the binary (ui.c) until SIGINT/SIGTERM.
 * There is only one exported symbol in this file: ms_cmd_ui. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "serve.h"
#include "ui.h"

static const char UI_HELP[] =
    "usage: moonspan ui [--addr HOST:PORT] [--token TOKEN] [--db PATH]\n"
    "\n"
    "Serves a web view of the store: traces (filter, sort, page), one trace as\n"
    "a waterfall, the checklist as charts, eval runs, and two runs compared. The\n"
    "pages and their JSON endpoints come from the binary itself: nothing is\n"
    "fetched from the network. The store is opened read-only and never upgraded;\n"
    "the pages follow what other processes write to it. Prints one line once\n"
    "listening, `moonspan ui: http://HOST:PORT/` (with ?token=... when a token\n"
    "is set), then runs until interrupted (Ctrl-C, SIGTERM). README, section\n"
    "Web UI.\n"
    "\n"
    "  --addr HOST:PORT  where to listen (default 127.0.0.1:7373; port 0: any\n"
    "                    free port, the one taken is printed). An address that\n"
    "                    is not loopback (127.0.0.0/8, localhost) needs --token\n"
    "  --token TOKEN     every request must carry it (Authorization: Bearer\n"
    "                    TOKEN, or ?token=TOKEN); letters, digits and . _ ~ -\n"
    "  --db PATH         the store (default: $MOONSPAN_DB, else ./moonspan.db)\n"
    "\n"
    "Exit status: 0 when stopped by SIGINT/SIGTERM, 2 for bad usage (a bad\n"
    "address or token, a port taken, a missing store or one too old to read).\n";

int ms_cmd_ui(ms_cli *c)
{
    const char *addr = "127.0.0.1:7373", *token = NULL;
    while (c->i < c->argc) {
        if (ms_cli_global(c))
            continue;
        if (ms_cli_flag(c, "--help") || ms_cli_flag(c, "-h")) {
            fputs(UI_HELP, stdout);
            return 0;
        }
        if (!ms_cli_value(c, "--addr", &addr) && !ms_cli_value(c, "--token", &token))
            ms_cli_unknown(c);
    }
    ms_cli_refuse_prices(c);
    char err[1024];
    struct sockaddr_in sa;
    if (ms_serve_parse_addr(addr, &sa, err, sizeof err))
        ms_cli_usage_error(c, "--addr %s", err);
    if (token && (!*token || token[strspn(token, MS_UI_TOKEN_CHARS)] || strlen(token) > 200))
        ms_cli_usage_error(c, "--token must be 1 to 200 letters, digits, '.', '_', '~' or '-' (it travels in"
                              " URLs); e.g. --token \"$(head -c 24 /dev/urandom | base64 | tr -d +/=)\"");
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && !token)
        ms_cli_usage_error(c, "--addr %s is not a loopback address, so anyone who can reach it could read the"
                              " store; add --token TOKEN (every request must then carry it), or listen on"
                              " 127.0.0.1", addr);

    /* signals are taken by sigwait below, never by a handler: the
     * server's thread inherits the mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    ms_ui *ui = NULL;
    ms_serve *srv = NULL;
    int rc = MS_EXIT_USAGE;
    if (ms_ui_open(c->db, token, &ui, err, sizeof err)) {
        fprintf(stderr, "moonspan ui: %s\n", err);
        goto done;
    }
    if (!(srv = ms_serve_new(0)) || ms_ui_attach(ui, srv)) {
        fprintf(stderr, "moonspan ui: out of memory\n");
        rc = 1;
        goto done;
    }
    if (ms_serve_start(srv, addr, err, sizeof err)) {
        fprintf(stderr, "moonspan ui: %s\n", err);
        goto done;
    }
    printf("moonspan ui: http://%.*s:%d/%s%s\n", (int)(strrchr(addr, ':') - addr), addr, ms_serve_port(srv),
           token ? "?token=" : "", token ? token : "");
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    rc = 0;
done:
    ms_serve_free(srv); /* no request runs after this: the store can close */
    ms_ui_close(ui);
    return rc;
}
