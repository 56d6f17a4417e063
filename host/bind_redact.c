/* bind_redact — the run's redaction (telemetry/ms_redact.h) put in place:
 * what the trace buffers filter, and moonspan.redact / moonspan.capture_content
 * for scripts/llm.lua. There is one redactor per run, made when the host
 * starts from --redact and the built-in patterns. */
#include <lauxlib.h>
#include <lua.h>

#include "cli.h"
#include "host.h"
#include "ms_redact.h"

static size_t filter(const void *ctx, const char *s, size_t n, ms_buf *out)
{
    return ms_redact(ctx, s, n, out);
}

int ms_host_redaction(ms_record_opts *o)
{
    ms_host *h = &ms_the_host;
    if (!o->redactor && !(o->redactor = ms_redactor_new()))
        return -1;
    h->redactor = o->redactor;
    o->redactor = NULL; /* the host's now: freed when the run ends */
    h->capture_content = o->capture;
    /* Errors are rare, so every one is scanned. Attribute values are set
     * on the hot path: they are scanned when the run asked for redaction
     * (captured content, or patterns of its own). */
    int values = h->capture_content || ms_redactor_patterns(h->redactor) > 0;
    ms_trace_set_filters(filter, values ? filter : NULL, h->redactor);
    return 0;
}

void ms_host_redaction_end(void)
{
    ms_host *h = &ms_the_host;
    ms_trace_set_filters(NULL, NULL, NULL);
    ms_redactor_free(h->redactor);
    h->redactor = NULL;
}

size_t ms_host_redact(const char *s, size_t n, ms_buf *out)
{
    size_t made = ms_the_host.redactor ? ms_redact(ms_the_host.redactor, s, n, out) : 0;
    if (!made)
        ms_buf_add(out, s, n);
    return made;
}

/* moonspan.redact(text) -> text with secrets, e-mail addresses and the
 * run's --redact patterns masked; the number of masks second. */
static int l_redact(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    ms_buf b = {0};
    size_t made = ms_host_redact(s, n, &b);
    if (b.oom) {
        ms_buf_free(&b);
        return luaL_error(L, "moonspan.redact: out of memory");
    }
    ms_push_buf_free(L, &b);
    lua_pushinteger(L, (lua_Integer)made);
    return 2;
}

void ms_open_redact(lua_State *L)
{
    lua_getglobal(L, "moonspan"); /* moonspan */
    lua_pushcfunction(L, l_redact);
    lua_setfield(L, -2, "redact");
    lua_pushboolean(L, ms_the_host.capture_content);
    lua_setfield(L, -2, "capture_content");
    lua_pop(L, 1);
}
