#include "subreg/cursor.h"

#include <stdlib.h>
#include <string.h>

#include "subreg/util.h"

#define PREFIX "c1:"
#define PREFIX_DESC "c1d:" /* a page of an order=desc list */
#define MAX_ID 64

static bool id_chars_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_ID) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

char *cursor_encode(const char *last_id, bool desc)
{
    strbuf sb = {0};
    sb_puts(&sb, desc ? PREFIX_DESC : PREFIX);
    sb_puts(&sb, last_id);
    char *out = b64url_encode(sb.data, sb.len);
    sb_free(&sb);
    return out;
}

char *cursor_decode(const char *token, bool *desc)
{
    unsigned char *raw;
    size_t n;
    if (strlen(token) > 200 || !b64url_decode(token, strlen(token), &raw, &n)) return NULL;
    char *out = NULL;
    for (int d = 0; d < 2 && !out; d++) {
        const char *prefix = d ? PREFIX_DESC : PREFIX;
        size_t pl = strlen(prefix);
        if (n > pl && memcmp(raw, prefix, pl) == 0 && id_chars_ok((char *)raw + pl, n - pl)) {
            out = xstrndup((char *)raw + pl, n - pl);
            *desc = d;
        }
    }
    free(raw);
    return out;
}

bool parse_limit(const char *s, int *limit)
{
    *limit = 50;
    if (!s) return true;
    if (!*s) return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v <= 200) v = v * 10 + (*p - '0'); /* any larger number is clamped: stop counting */
    }
    if (v < 1) return false;
    *limit = v > 200 ? 200 : (int)v;
    return true;
}
