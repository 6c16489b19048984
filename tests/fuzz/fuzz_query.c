/* The request line's parsers (http/server.c, through http_internal.h): the query
 * string, the route patterns of every resource, If-Match, and what list
 * handlers do with query values (filters, ?limit, ?cursor). The first byte picks
 * what the rest is: 0 a query string, 1 a path, 2 a path segment put into every
 * {id} pattern, 3 an If-Match header.
 *
 * Properties: a parsed query has at most MAX_QUERY parameters, non-empty keys,
 * keys and values valid UTF-8, one parameter per non-empty '&' piece, and
 * percent-encoding every byte of what was parsed parses back to the same
 * parameters; a path matches a pattern only with a {id} segment of 1..200 bytes
 * without '/', and putting the segment back into the pattern gives the path;
 * every such segment matches; If-Match "*" and the exact tag always match. */
#include "descriptors.h"
#include "fuzz.h"
#include "http/http_internal.h"
#include "subreg/cursor.h"
#include "subreg/util.h"

static void free_query(req *r)
{
    for (int i = 0; i < r->nquery; i++) {
        free(r->qkey[i]);
        free(r->qval[i]);
    }
    r->nquery = 0;
}

static void encode(strbuf *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) sb_printf(out, "%%%02X", *p);
}

static void values(const req *r)
{
    /* what the list handlers do with the values */
    int limit;
    const char *v = req_query(r, "limit");
    if (parse_limit(v, &limit)) CHECK(limit >= 1 && limit <= 200, "limit %d", limit);
    bool desc;
    if ((v = req_query(r, "cursor"))) free(cursor_decode(v, &desc));
    for (int d = 0; d < fuzz_ndescriptors(); d++) {
        const resource *res = fuzz_descriptor((uint8_t)d);
        for (const filter_def *f = res->filters; f && f->param; f++) {
            if (!(v = req_query(r, f->param))) continue;
            char msg[200] = "";
            cJSON *val = schema_parse_scalar(f->type, v, msg, sizeof msg);
            CHECK(val || msg[0], "filter %s refused without a message", f->param);
            cJSON_Delete(val);
        }
    }
}

static void query(const char *qs)
{
    req r = {0};
    bool ok = http_parse_query(&r, qs) == NULL;
    CHECK(r.nquery >= 0 && r.nquery <= MAX_QUERY, "%d parameters", r.nquery);
    if (!ok) {
        free_query(&r);
        return;
    }
    int pieces = 0;
    for (const char *p = qs; *p;) {
        size_t len = strcspn(p, "&");
        pieces += len > 0;
        p += len;
        if (*p) p++;
    }
    CHECK(pieces == r.nquery, "%d pieces, %d parameters", pieces, r.nquery);
    strbuf again = {0};
    for (int i = 0; i < r.nquery; i++) {
        CHECK(r.qkey[i][0], "an empty key");
        CHECK(utf8_valid(r.qkey[i], strlen(r.qkey[i])) && utf8_valid(r.qval[i], strlen(r.qval[i])), "not UTF-8");
        if (i) sb_puts(&again, "&");
        encode(&again, r.qkey[i]);
        sb_puts(&again, "=");
        encode(&again, r.qval[i]);
    }
    req r2 = {0};
    CHECK(http_parse_query(&r2, again.data ? again.data : "") == NULL, "re-encoded query refused: %s", again.data);
    CHECK(r2.nquery == r.nquery, "re-encoded: %d parameters, was %d", r2.nquery, r.nquery);
    for (int i = 0; i < r.nquery; i++)
        CHECK(strcmp(r.qkey[i], r2.qkey[i]) == 0 && strcmp(r.qval[i], r2.qval[i]) == 0, "parameter %d changed", i);
    values(&r);
    free_query(&r2);
    free_query(&r);
    sb_free(&again);
}

/* Every pattern a descriptor routes: its collection, item and nested paths. */
static void each_pattern(void (*fn)(const char *pattern, const char *arg), const char *arg)
{
    for (int d = 0; d < fuzz_ndescriptors(); d++) {
        const resource *res = fuzz_descriptor((uint8_t)d);
        const char *ps[] = {res->path, res->item_path, res->parent_path};
        for (int i = 0; i < 3; i++)
            if (ps[i]) fn(ps[i], arg);
    }
}

static void match_path(const char *pattern, const char *path)
{
    char *param = NULL;
    if (!http_route_match(pattern, path, &param)) {
        CHECK(!param, "no match but a parameter");
        return;
    }
    const char *brace = strchr(pattern, '{');
    if (!brace) {
        CHECK(!param && strcmp(pattern, path) == 0, "%s matched %s", path, pattern);
        return;
    }
    size_t n = strlen(param);
    CHECK(n >= 1 && n <= 200 && !strchr(param, '/'), "segment \"%s\"", param);
    strbuf back = {0};
    sb_append(&back, pattern, (size_t)(brace - pattern));
    sb_puts(&back, param);
    sb_puts(&back, strchr(brace, '}') + 1);
    CHECK(strcmp(back.data, path) == 0, "%s matched %s with \"%s\"", path, pattern, param);
    sb_free(&back);
    free(param);
}

static void match_segment(const char *pattern, const char *seg)
{
    const char *brace = strchr(pattern, '{');
    if (!brace) return;
    strbuf path = {0};
    sb_append(&path, pattern, (size_t)(brace - pattern));
    sb_puts(&path, seg);
    sb_puts(&path, strchr(brace, '}') + 1);
    char *param = NULL;
    bool ok = http_route_match(pattern, path.data, &param);
    size_t n = strlen(seg);
    bool expect = n >= 1 && n <= 200 && !strchr(seg, '/');
    CHECK(ok == expect, "segment \"%s\" in %s: match %d", seg, pattern, ok);
    if (ok) CHECK(strcmp(param, seg) == 0, "segment \"%s\" came back as \"%s\"", seg, param);
    free(param);
    sb_free(&path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *s = fuzz_cstr(data + 1, size - 1);
    switch (data[0] & 3) {
    case 0: query(s); break;
    case 1:
        if (utf8_valid(s, strlen(s))) each_pattern(match_path, s); /* begin_request refuses the rest */
        break;
    case 2: each_pattern(match_segment, s); break;
    default: {
        (void)if_match_allows(s, "\"3\"");
        /* a strong tag s ("..." without inner quotes) is found in any list */
        size_t n = strlen(s);
        if (n >= 2 && s[0] == '"' && s[n - 1] == '"' && !memchr(s + 1, '"', n - 2)) {
            strbuf list = {0};
            sb_printf(&list, "W/\"x\", %s ,\"y\"", s);
            CHECK(if_match_allows(list.data, s), "If-Match %s misses %s", list.data, s);
            sb_free(&list);
            sb_printf(&list, "W/%s", s);
            CHECK(!if_match_allows(list.data, s), "the weak %s matched strongly", list.data);
            sb_free(&list);
        }
        break;
    }
    }
    free(s);
    return 0;
}
