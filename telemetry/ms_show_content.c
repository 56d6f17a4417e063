/* ms_show_content — the excerpt of an llm span's captured prompt and
 * answer that `moonspan show` prints under it (--capture-content). The
 * whole text is in the span's attributes, which --json and `moonspan sql`
 * give as they are. */
#include "ms_show_data.h"

#include "ms_fmt.h"
#include "ms_pack.h"
#include "ms_read.h"

#include <string.h>

#define EXCERPT_BYTES 120

typedef struct found {
    ms_pstr input, output;
} found;

static int pick(void *ud, const ms_attr_rec *a)
{
    found *f = ud;
    if (a->type != MS_ATTR_STRING)
        return 0;
    if (a->key.len == 21 && memcmp(a->key.p, "gen_ai.input.messages", 21) == 0)
        f->input = a->s;
    else if (a->key.len == 22 && memcmp(a->key.p, "gen_ai.output.messages", 22) == 0)
        f->output = a->s;
    return 0;
}

/* The last message's role, and the first part's text (or "(TYPE)" for a
 * part that has none, such as a tool call). */
static const char EXCERPT_SQL[] =
    "SELECT json_extract(?1, '$[#-1].role'),"
    " coalesce(json_extract(?1, '$[#-1].parts[0].content'),"
    "          '(' || json_extract(?1, '$[#-1].parts[0].type') || ')')"
    " WHERE json_valid(?1)";

/* Reads the excerpt of one messages text into *role / *text (arena
 * offsets; MS_NO_STR when absent). */
static int excerpt(show_content *c, trace_view *v, ms_pstr json, size_t *role, size_t *text)
{
    *role = *text = MS_NO_STR;
    if (!json.p)
        return 0;
    sqlite3_reset(c->st);
    if (sqlite3_bind_text(c->st, 1, json.p, (int)json.len, SQLITE_STATIC) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(c->st);
    if (rc == SQLITE_ROW) {
        const unsigned char *r = sqlite3_column_text(c->st, 0), *t = sqlite3_column_text(c->st, 1);
        if (r)
            *role = ms_arena_put(&v->arena, (const char *)r, (size_t)sqlite3_column_bytes(c->st, 0));
        if (t)
            *text = ms_arena_put(&v->arena, (const char *)t, (size_t)sqlite3_column_bytes(c->st, 1));
    } else if (rc != SQLITE_DONE) {
        return -1;
    }
    sqlite3_reset(c->st);
    return 0;
}

int ms_show_content_load(show_content *c, sqlite3 *db, trace_view *v, const ms_pack_reader *r,
                         const ms_span_rec *sp, span_node *s, char *err, size_t errlen)
{
    s->input_role = s->input_text = s->output_text = MS_NO_STR;
    if (!sp->has_llm || sp->nattrs == 0)
        return 0;
    found f = {{0}, {0}};
    if (ms_pack_attrs(r, sp, pick, &f) < 0)
        return ms_errf(err, errlen, "bad attributes");
    if (!f.input.p && !f.output.p)
        return 0;
    if (!c->st && ms_read_prepare(db, EXCERPT_SQL, &c->st, err, errlen))
        return -1;
    size_t unused;
    if (excerpt(c, v, f.input, &s->input_role, &s->input_text) ||
        excerpt(c, v, f.output, &unused, &s->output_text))
        return ms_errf(err, errlen, "cannot read the captured content: %s", sqlite3_errmsg(db));
    return 0;
}

void ms_show_content_close(show_content *c)
{
    sqlite3_finalize(c->st);
    c->st = NULL;
}

void ms_show_content_text(const trace_view *v, const span_node *s, uint32_t depth, ms_buf *b)
{
    const char *in = ms_arena_str(&v->arena, s->input_text), *out = ms_arena_str(&v->arena, s->output_text);
    if (in) {
        for (uint32_t d = 0; d <= depth; d++)
            ms_buf_adds(b, "  ");
        ms_buf_adds(b, "input   ");
        ms_fmt_text(b, ms_arena_str(&v->arena, s->input_role), "?");
        ms_buf_adds(b, ": ");
        ms_fmt_text_max(b, in, EXCERPT_BYTES, "");
        ms_buf_addc(b, '\n');
    }
    if (out) {
        for (uint32_t d = 0; d <= depth; d++)
            ms_buf_adds(b, "  ");
        ms_buf_adds(b, "output  ");
        ms_fmt_text_max(b, out, EXCERPT_BYTES, "");
        ms_buf_addc(b, '\n');
    }
}
