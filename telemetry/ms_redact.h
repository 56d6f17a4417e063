/* ms_redact — masks secrets and personal data in text before it is
 * stored, logged or exported.
 *
 * Two kinds of pattern, applied in this order:
 *   - built in, found by a hand-written scanner (no regex: one pass over
 *     the text, 1-2 ns a byte): API keys by their shape (sk-..., which
 *     covers sk-ant- and sk-proj-, AKIA..., ghp_/gho_/ghu_/ghs_/ghr_...,
 *     github_pat_..., xoxb-/xoxp-/xoxa-/xoxr-/xoxs-...), the credential
 *     after "Bearer " or "Basic ", a long value after a name containing
 *     key, token, secret or passw followed at once (or after its closing
 *     quote) by ':' or '=' ("api_key=...",
 *     "\"token\": \"...\""), and e-mail addresses;
 *   - the user's own, POSIX extended regular expressions (--redact).
 * Each match becomes a marker naming its kind: [REDACTED:api_key],
 * [REDACTED:bearer], [REDACTED:secret], [REDACTED:email],
 * [REDACTED:pattern]; for Bearer/Basic and name=value secrets only the
 * value is replaced, so "Authorization: Bearer [REDACTED:bearer]" still
 * reads. A marker matches no built-in pattern, so redacting twice changes
 * nothing (unless a user pattern matches the markers themselves).
 *
 * The credentials one llm.call sends, known exactly, are stripped before
 * this by scripts/wire.lua (S.redact); this module is what every text the
 * store, the logs and the exports receive goes through. No Lua here. */
#ifndef MS_REDACT_H
#define MS_REDACT_H

#include <stddef.h>

#include "ms_buf.h"

typedef struct ms_redactor ms_redactor;

/* A redactor with the built-in patterns only. NULL when out of memory. */
ms_redactor *ms_redactor_new(void);

/* Adds a user pattern (POSIX ERE, as regcomp(3) with REG_EXTENDED).
 * Returns 0, or -1 with why it is not a valid expression in err. A
 * pattern that matches the empty string is refused: it would mask
 * nothing but cost a pass. */
int ms_redactor_add(ms_redactor *r, const char *regex, char *err, size_t errlen);

/* How many user patterns r has. */
int ms_redactor_patterns(const ms_redactor *r);

void ms_redactor_free(ms_redactor *r);

/* Masks s[0..n): when something matched, appends the masked text to out
 * and returns the number of masks made; returns 0, out untouched, when
 * nothing did (the common case costs no copy). Safe to call from several threads at
 * once on one redactor (regexec is). Text after a NUL byte is scanned by
 * the built-in patterns; user patterns see each NUL-separated piece. */
size_t ms_redact(const ms_redactor *r, const char *s, size_t n, ms_buf *out);

#endif
