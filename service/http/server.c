/* civetweb glue: one entry callback (begin_request), the routing table,
 * authentication, bounded bodies, the request log, start and stop. Responses
 * are respond.c, counters metrics.c, the public rate limit ratelimit.c, the
 * graceful stop drain.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <civetweb.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "subreg/http.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"
#include "subreg/store.h"


static struct mg_context *ctx;
static route *routes;
static int nroutes;
/* Routes without a {param}, sorted by path then method: found by binary search
 * (the public list is the hot path) instead of trying every pattern. */
static const route **exact;
static int nexact;
http_settings http_cfg;

/* ---- dispatch ---------------------------------------------------------- */

static bool valid_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* Request ids need to be unique, not secret: a per-thread generator seeded once
 * from the system's random source (a getrandom call per request is measurable). */
static void fresh_request_id(char out[130])
{
    static __thread uint64_t state;
    if (!state) random_bytes(&state, sizeof state);
    state += 0x9e3779b97f4a7c15ull; /* splitmix64 */
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    static const char hex[] = "0123456789abcdef";
    uint64_t t = (uint64_t)now_ms();
    for (int i = 11; i >= 0; i--, t >>= 4) out[i] = hex[t & 15];
    for (int i = 27; i >= 12; i--, z >>= 4) out[i] = hex[z & 15];
    out[28] = '\0';
}

static void set_request_id(struct mg_connection *conn, char out[130])
{
    const char *h = conn ? mg_get_header(conn, "X-Request-Id") : NULL;
    if (h && valid_request_id(h)) snprintf(out, 130, "%s", h);
    else fresh_request_id(out);
}

/* Decodes the query into r; NULL when fine, else what is wrong with it. */
const char *http_parse_query(req *r, const char *qs)
{
    if (!qs || !*qs) return NULL;
    const char *p = qs;
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            if (r->nquery == MAX_QUERY) return "the query string has too many parameters";
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            size_t vlen = eq ? len - klen - 1 : 0;
            char *k = xmalloc(klen + 1), *v = xmalloc(vlen + 1);
            int kd = mg_url_decode(p, (int)klen, k, (int)klen + 1, 1);
            int vd = eq ? mg_url_decode(eq + 1, (int)vlen, v, (int)vlen + 1, 1) : 0;
            if (!eq) v[0] = '\0';
            r->qkey[r->nquery] = k;
            r->qval[r->nquery] = v;
            r->nquery++;
            if (kd < 0 || vd < 0 || klen == 0) return "the query string is malformed";
            /* %00 would cut the value short (?status=active%00x filtering as "active") */
            if ((size_t)kd != strlen(k) || (size_t)vd != strlen(v)) return "%00 is not allowed in the query string";
            if (!utf8_valid(k, strlen(k)) || !utf8_valid(v, strlen(v))) return "the query string is not valid UTF-8";
        }
        p += len;
        if (*p == '&') p++;
    }
    return NULL;
}

/* The raw path (as received, before any decoding); NULL when it may be decoded
 * once and routed: no %00, no encoded '/', no "." or ".." segment, raw or
 * encoded — a path means what it says, never another path. */
static const char *path_problem(const char *raw)
{
    if (raw[0] != '/') return "the path must start with /";
    for (const char *p = raw; *p; p++) {
        if (p[0] != '%') continue;
        if (p[1] == '0' && p[2] == '0') return "%00 is not allowed in the path";
        if (p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) return "an encoded / (%2F) is not allowed in the path";
    }
    for (const char *seg = raw + 1;; seg++) {
        int dots = 0;
        const char *p = seg;
        for (;;) {
            if (*p == '.') p++;
            else if (p[0] == '%' && p[1] == '2' && (p[2] == 'e' || p[2] == 'E')) p += 3;
            else break;
            dots++;
        }
        if ((*p == '/' || *p == '\0') && (dots == 1 || dots == 2))
            return "a \".\" or \"..\" segment (raw or encoded) is not allowed in the path";
        seg = strchr(seg, '/');
        if (!seg) break;
    }
    return NULL;
}

/* The raw path as a valid URI reference: bytes a URI may not hold
 * percent-encoded, what is already encoded left as it is. */
static char *uri_reference(const char *raw)
{
    static const char hex[] = "0123456789ABCDEF";
    strbuf sb = {0};
    sb_reserve(&sb, strlen(raw) + 1);
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    (*p && strchr("-._~!$&'()*+,;=:@/", *p)) ||
                    (*p == '%' && isxdigit(p[1]) && isxdigit(p[2]));
        if (keep) {
            sb_append(&sb, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_append(&sb, e, 3);
        }
    }
    return sb.data;
}

/* The raw path (n bytes, path_problem found nothing) percent-decoded once. */
static char *decoded_path(const char *raw, size_t n)
{
    char *path = xmalloc(n + 1);
    mg_url_decode(raw, (int)n, path, (int)n + 1, 0);
    return path;
}

/* The detail of a 405: the method and what the path allows. */
static void not_allowed_detail(char *d, size_t cap, const char *method, const char *allow)
{
    snprintf(d, cap, "%.16s is not allowed here; allowed: %.150s", method, allow);
}

/* The request's framing, before civetweb's Content-Length is trusted: two
 * lengths, or a length beside Transfer-Encoding, let a proxy and this server
 * see different requests in one stream (request smuggling). NULL when fine. */
static const char *framing_problem(const struct mg_request_info *ri)
{
    int lengths = 0, encodings = 0;
    const char *len = NULL;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name;
        if (strcasecmp(name, "Content-Length") == 0) {
            lengths++;
            len = ri->http_headers[i].value;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            encodings++;
        }
    }
    if (lengths > 1) return "more than one Content-Length";
    if (encodings > 1) return "more than one Transfer-Encoding";
    if (lengths && encodings) return "both Content-Length and Transfer-Encoding";
    if (len) {
        const char *p = len;
        while (*p >= '0' && *p <= '9') p++;
        if (p == len) return "Content-Length is not a number";
        while (*p == ' ' || *p == '\t') p++;
        if (*p) return "Content-Length is not a number";
    }
    return NULL;
}

bool http_route_match(const char *pattern, const char *path, char **param)
{
    const char *brace = strchr(pattern, '{');
    if (!brace) return strcmp(pattern, path) == 0;
    size_t pre = (size_t)(brace - pattern);
    if (strncmp(pattern, path, pre) != 0) return false;
    const char *close = strchr(brace, '}');
    const char *rest_pat = close + 1;
    const char *seg = path + pre;
    size_t seglen = strcspn(seg, "/");
    if (seglen == 0 || seglen > 200) return false;
    if (strcmp(seg + seglen, rest_pat) != 0) return false;
    *param = xstrndup(seg, seglen);
    return true;
}

static int cmp_route(const void *a, const void *b)
{
    const route *x = *(const route *const *)a, *y = *(const route *const *)b;
    int c = strcmp(x->pattern, y->pattern);
    return c ? c : strcmp(x->method, y->method);
}

/* The exact routes that the first-match scan would also pick (no pattern route
 * before them matches their path). */
static void index_exact(void)
{
    exact = xcalloc((size_t)nroutes + 1, sizeof *exact);
    nexact = 0;
    for (int i = 0; i < nroutes; i++) {
        if (strchr(routes[i].pattern, '{')) continue;
        bool shadowed = false;
        for (int j = 0; j < i && !shadowed; j++) {
            char *param = NULL;
            shadowed = strcmp(routes[j].method, routes[i].method) == 0 &&
                       http_route_match(routes[j].pattern, routes[i].pattern, &param);
            free(param);
        }
        if (!shadowed) exact[nexact++] = &routes[i];
    }
    qsort(exact, (size_t)nexact, sizeof *exact, cmp_route);
}

static const route *find_exact(const char *method, const char *path)
{
    int lo = 0, hi = nexact - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(exact[mid]->pattern, path);
        if (c == 0) c = strcmp(exact[mid]->method, method);
        if (c == 0) return exact[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* The methods the routes allow on path ("GET, HEAD, POST"); empty when none. */
static void allowed_methods(const char *path, strbuf *allow)
{
    for (int i = 0; i < nroutes; i++) {
        char *param = NULL;
        if (!http_route_match(routes[i].pattern, path, &param)) continue;
        free(param);
        if (!strstr(allow->data ? allow->data : "", routes[i].method)) {
            if (allow->len) sb_puts(allow, ", ");
            sb_puts(allow, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0) sb_puts(allow, ", HEAD");
        }
    }
}

static bool authenticate(req *r)
{
    const char *h = req_header(r, "Authorization");
    if (!h || !*h) {
        req_add_header(r, "WWW-Authenticate", "Bearer realm=\"subreg\"");
        respond_problem(r, 401, "unauthorized", "this endpoint needs a bearer token");
        return false;
    }
    char why[128] = "invalid token";
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ') tok++;
        if (auth_verify(http_cfg.auth, tok, now_ms() / 1000, &r->who, why, sizeof why)) {
            r->authenticated = true;
            return true;
        }
    } else {
        snprintf(why, sizeof why, "the Authorization scheme must be Bearer");
    }
    char hdr[256];
    snprintf(hdr, sizeof hdr, "Bearer realm=\"subreg\", error=\"invalid_token\", error_description=\"%s\"", why);
    req_add_header(r, "WWW-Authenticate", hdr);
    respond_problem(r, 401, "unauthorized", why);
    return false;
}

static void too_large(req *r, long max)
{
    char d[96];
    snprintf(d, sizeof d, "the body is larger than %ld bytes", max);
    req_add_header(r, "Connection", "close");
    respond_problem(r, 413, "payload-too-large", d);
}

static bool read_body(req *r)
{
    const struct mg_request_info *ri = mg_get_request_info(r->conn);
    long long cl = ri->content_length;
    long max = r->route->max_body ? r->route->max_body : http_cfg.max_body;
    if (cl > max) {
        too_large(r, max);
        return false;
    }
    /* Read straight into the growing buffer: worker stacks are small. */
    size_t cap = cl > 0 ? (size_t)cl + 1 : 16384, len = 0;
    char *buf = xmalloc(cap);
    int n;
    for (;;) {
        if (len + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        if ((n = mg_read(r->conn, buf + len, cap - len - 1)) <= 0) break;
        len += (size_t)n;
        if ((long)len > max) {
            free(buf);
            too_large(r, max);
            return false;
        }
    }
    buf[len] = '\0';
    strbuf sb = {.data = buf, .len = len, .cap = cap};
    r->body = sb.data;
    r->body_len = sb.len;
    return true;
}

/* What is left of the request body (an answer given without reading it, e.g.
 * a 401 to a POST), read and dropped before civetweb closes the connection:
 * a socket closed with unread bytes sends a reset, which can destroy the
 * answer before the client has read it. At most the body limit. */
static void discard_body(struct mg_connection *conn)
{
    char buf[4096];
    long left = http_cfg.max_body;
    int n;
    while (left > 0 && (n = mg_read(conn, buf, sizeof buf)) > 0) left -= n;
}

static void log_request(const req *r)
{
    int level = r->status >= 500 ? LOG_ERROR : LOG_INFO;
    if (!log_enabled(level)) return;
    strbuf f = {0};
    log_field(&f, "request_id", r->request_id);
    log_field(&f, "method", r->method);
    log_field(&f, "path", r->path);
    log_field_int(&f, "status", r->status);
    log_field_int(&f, "duration_ms", (long long)(mono_ms() - r->started_ms));
    if (r->authenticated) log_field(&f, "sub", r->who.sub);
    log_event(level, "request", f.data);
    sb_free(&f);
}

static int begin_request(struct mg_connection *conn)
{
    count_started();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    req r = {0};
    r.conn = conn;
    r.method = ri->request_method;
    /* civetweb leaves the path undecoded (decode_url=no): checked, then decoded once here */
    const char *raw = ri->local_uri_raw ? ri->local_uri_raw : "/";
    char *instance = uri_reference(raw), *path = NULL;
    r.instance = instance;
    r.path = instance; /* until it is decoded */
    r.started_ms = mono_ms();
    r.head = strcmp(r.method, "HEAD") == 0;
    r.headers = header_buf; /* the thread's buffer for extra headers, emptied */
    r.headers.len = 0;
    if (r.headers.data) r.headers.data[0] = '\0';
    set_request_id(conn, r.request_id);

    /* stopping (drain.c): served as usual while the database is there, and
     * the connection ends with the answer */
    bool stopping = http_draining();
    if (stopping) req_add_header(&r, "Connection", "close");
    const char *why = framing_problem(ri);
    if (why) {
        req_add_header(&r, "Connection", "close"); /* what follows is not a request */
        respond_problem(&r, 400, "malformed-request", why);
        goto done;
    }
    if ((why = path_problem(raw))) {
        respond_problem(&r, 400, "malformed-request", why);
        goto done;
    }
    r.path = path = decoded_path(raw, strlen(raw));
    if (!utf8_valid(r.path, strlen(r.path))) {
        respond_problem(&r, 400, "malformed-request", "the path is not valid UTF-8");
        goto done;
    }
    if ((why = http_parse_query(&r, ri->query_string))) {
        respond_problem(&r, 400, "malformed-request", why);
        goto done;
    }

    const char *lookup_method = r.head ? "GET" : r.method;
    r.route = find_exact(lookup_method, r.path);
    for (int i = 0; i < nroutes && !r.route; i++) {
        if (strcmp(routes[i].method, lookup_method) != 0) continue;
        char *param = NULL;
        if (http_route_match(routes[i].pattern, r.path, &param)) {
            r.route = &routes[i];
            r.param = param;
        }
    }
    if (!r.route) {
        strbuf allow = {0};
        allowed_methods(r.path, &allow);
        if (allow.len == 0) {
            respond_problem(&r, 404, "not-found", "no such path");
        } else if (strcmp(r.method, "OPTIONS") == 0) {
            req_add_header(&r, "Allow", allow.data);
            respond_empty(&r, 204);
        } else {
            req_add_header(&r, "Allow", allow.data);
            char d[200];
            not_allowed_detail(d, sizeof d, r.method, allow.data);
            respond_problem(&r, 405, "method-not-allowed", d);
        }
        sb_free(&allow);
        goto done;
    }

    if (is_public_path(r.path)) {
        int retry = 1;
        if (!rate_allow(mg_get_request_info(conn)->remote_addr, &retry)) {
            char ra[16];
            snprintf(ra, sizeof ra, "%d", retry < 1 ? 1 : retry);
            req_add_header(&r, "Retry-After", ra);
            respond_problem(&r, 429, "rate-limited", "too many requests from this address; retry later");
            goto done;
        }
    }
    if (r.route->min_role > ROLE_NONE) {
        if (!authenticate(&r)) goto done;
        if (r.who.role < r.route->min_role) {
            char d[128];
            snprintf(d, sizeof d, "this needs the %s role", role_name(r.route->min_role));
            respond_problem(&r, 403, "forbidden", d);
            goto done;
        }
    }
    if (strcmp(r.method, "POST") == 0 || strcmp(r.method, "PATCH") == 0 || strcmp(r.method, "PUT") == 0 ||
        strcmp(r.method, "DELETE") == 0) {
        if (!read_body(&r)) goto done;
    }
    /* one deadline for all the database work of the request (the body is in) */
    store_set_deadline(mono_ms() + http_cfg.request_deadline_ms);
    r.route->fn(&r);
    store_set_deadline(0);
    if (!r.responded) respond_problem(&r, 500, "internal-error", "the handler produced no response");

done:
    if (stopping) discard_body(conn);
    count_request(r.status, mono_ms() - r.started_ms);
    log_request(&r);
    for (int i = 0; i < r.nquery; i++) {
        free(r.qkey[i]);
        free(r.qval[i]);
    }
    free(r.param);
    free(r.body);
    free(path);
    free(instance);
    if (r.headers.cap > 65536) sb_free(&r.headers);
    header_buf = r.headers;
    count_finished();
    return r.status;
}

/* Did civetweb refuse the request line only for its method? civetweb 1.15
 * knows GET, HEAD, POST, PUT, DELETE, OPTIONS, CONNECT, PATCH, PROPFIND, MKCOL,
 * LOCK, UNLOCK, PROPPATCH and REPORT, and answers 400 for any other (TRACE
 * included) before a callback runs, the headers unparsed. Its request line
 * parser has set method, target and version by then: the version had its
 * "HTTP/" checked and skipped (the byte before it is the '/') — only the method
 * check comes after that. */
static bool unknown_method(const struct mg_request_info *ri)
{
    static const char *const known[] = {"GET",   "HEAD",  "POST",   "PUT",      "DELETE",    "OPTIONS", "CONNECT",
                                        "PATCH", "PROPFIND", "MKCOL", "LOCK", "UNLOCK", "PROPPATCH", "REPORT", NULL};
    if (!ri || !ri->request_method || !ri->request_uri || !ri->http_version || ri->http_version[-1] != '/')
        return false;
    if (!*ri->request_method || strlen(ri->request_method) > 32) return false;
    for (const char *p = ri->request_method; *p; p++) /* a token (RFC 9110 5.6.2) */
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) return false;
    for (const char *const *k = known; *k; k++)
        if (strcmp(*k, ri->request_method) == 0) return false;
    return true;
}

/* civetweb's own errors (malformed request line, header block too large, …);
 * a method civetweb does not know gets 405 (or 404) as from begin_request. */
static int http_error(struct mg_connection *conn, int status, const char *msg)
{
    char rid[130];
    set_request_id(conn, rid);
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char *instance = NULL, *path = NULL, extra[400] = "Connection: close\r\n";
    char detail[200];
    if (status == 400 && unknown_method(ri) && ri->request_uri[0] == '/') {
        size_t n = strcspn(ri->request_uri, "?");
        char *raw = xstrndup(ri->request_uri, n);
        instance = uri_reference(raw);
        if (!path_problem(raw)) {
            path = decoded_path(raw, n);
            strbuf allow = {0};
            allowed_methods(path, &allow);
            if (allow.len) {
                status = 405;
                snprintf(extra, sizeof extra, "Allow: %s\r\nConnection: close\r\n", allow.data);
                not_allowed_detail(detail, sizeof detail, ri->request_method, allow.data);
            } else {
                status = 404;
                snprintf(detail, sizeof detail, "no such path");
            }
            msg = detail;
            sb_free(&allow);
        }
        free(raw);
    }
    const char *slug = status == 413 || status == 431 ? "payload-too-large"
                       : status == 404              ? "not-found"
                       : status == 405              ? "method-not-allowed"
                       : status >= 500 && status != 505 ? "internal-error"
                                                    : "malformed-request";
    cJSON *p = problem_body(status, slug, msg && *msg ? msg : NULL, instance, rid);
    char *s = json_dump(p);
    cJSON_Delete(p);
    write_response(conn, status, "application/problem+json", s, strlen(s), rid, extra, false, true, false);
    free(s);
    free(instance);
    free(path);
    count_request(status, 0);
    return 0;
}

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    strbuf f = {0};
    log_field(&f, "component", "civetweb");
    log_event(LOG_WARN, message, f.data);
    sb_free(&f);
    return 1;
}

int add_routes(route *out, int cap, const route *rs, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n && k < cap; i++) out[k++] = rs[i];
    return k;
}

static void free_routes(void)
{
    free(routes);
    free(exact);
    routes = NULL;
    exact = NULL;
    nroutes = nexact = 0;
}

bool http_start(const http_settings *s, const route *rt, int n, char *err, size_t errlen)
{
    http_cfg = *s;
    rate_limit_init(s->rate_limit_exempt);
    routes = xmalloc((size_t)n * sizeof *routes);
    memcpy(routes, rt, (size_t)n * sizeof *routes);
    nroutes = n;
    index_exact();
    char threads[16], keepalive[16];
    snprintf(threads, sizeof threads, "%d", s->threads);
    snprintf(keepalive, sizeof keepalive, "%d", s->keep_alive_ms);
    const char *options[] = {"listening_ports", s->listen,
                             "num_threads", threads,
                             "tcp_nodelay", "1",
                             "enable_keep_alive", "yes",
                             "keep_alive_timeout_ms", keepalive,
                             "request_timeout_ms", "30000",
                             "access_control_allow_origin", "",
                             "enable_directory_listing", "no",
                             "decode_url", "no", /* begin_request checks the raw path, then decodes */
                             NULL};
    struct mg_callbacks cb = {0};
    cb.begin_request = begin_request;
    cb.http_error = http_error;
    cb.log_message = log_message;
    cb.exit_thread = on_thread_exit;
    cb.init_connection = drain_connection_opened;
    cb.connection_close = drain_connection_closed;
    mg_init_library(0);
    ctx = mg_start(&cb, NULL, options);
    if (!ctx) {
        snprintf(err, errlen, "SUBREG_LISTEN: cannot listen on %s (in use, or not host:port)", s->listen);
        free_routes();
        mg_exit_library();
        return false;
    }
    drain_init(ctx);
    return true;
}

void http_stop(void)
{
    if (ctx) mg_stop(ctx);
    ctx = NULL;
    mg_exit_library();
    free_routes();
}

