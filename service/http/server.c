#define _GNU_SOURCE
#include <arpa/inet.h>
#include <civetweb.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/http.h"
#include "subreg/json.h"
#include "subreg/log.h"

static struct mg_context *ctx;
static route *routes;
static int nroutes;
/* Routes without a {param}, sorted by path then method: found by binary search
 * (the public list is the hot path) instead of trying every pattern. */
static const route **exact;
static int nexact;
static http_settings settings;

/* ---- metrics ---------------------------------------------------------- */

static const double BUCKETS[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

/* Counters per worker thread (a slot each, on its own cache line), summed when
 * /metrics is read: shared counters made every request bounce one cache line
 * between the cores. Slots are shared (atomically) beyond MSLOTS threads. */
#define MSLOTS 128
typedef struct {
    uint64_t by_class[6];        /* 1xx..5xx, index = status / 100 */
    uint64_t hist[NBUCKETS + 1]; /* cumulative buckets computed on output */
    uint64_t dur_sum_us;
    uint64_t started, finished; /* requests in begin_request: in flight = started - finished */
} __attribute__((aligned(64))) metric_slot;
static metric_slot mslots[MSLOTS];
static unsigned mslot_next;
static __thread int my_slot = -1;

static metric_slot *slot(void)
{
    if (my_slot < 0) my_slot = (int)(__atomic_fetch_add(&mslot_next, 1, __ATOMIC_RELAXED) % MSLOTS);
    return &mslots[my_slot];
}

static void count_request(int status, int64_t dur_ms)
{
    metric_slot *m = slot();
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;
    __atomic_add_fetch(&m->by_class[cls], 1, __ATOMIC_RELAXED);
    double s = (double)dur_ms / 1000.0;
    size_t b = 0;
    while (b < NBUCKETS && s > BUCKETS[b]) b++;
    __atomic_add_fetch(&m->hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->dur_sum_us, (uint64_t)dur_ms * 1000, __ATOMIC_RELAXED);
}

static unsigned long long sum_slots(size_t offset)
{
    unsigned long long t = 0;
    for (int i = 0; i < MSLOTS; i++)
        t += __atomic_load_n((const uint64_t *)((const char *)&mslots[i] + offset), __ATOMIC_ACQUIRE);
    return t;
}

/* Requests between the start and the end of begin_request. Finished is read
 * first, so the result never undercounts: 0 means none was in flight. */
static unsigned long long in_flight(void)
{
    unsigned long long done = sum_slots(offsetof(metric_slot, finished));
    return sum_slots(offsetof(metric_slot, started)) - done;
}

void http_metrics(strbuf *out)
{
    sb_puts(out, "# HELP subreg_http_requests_total HTTP responses by status class.\n"
                 "# TYPE subreg_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        sb_printf(out, "subreg_http_requests_total{code=\"%dxx\"} %llu\n", c,
                  sum_slots(offsetof(metric_slot, by_class) + (size_t)c * sizeof(uint64_t)));
    sb_puts(out, "# HELP subreg_http_request_duration_seconds Time from request to response.\n"
                 "# TYPE subreg_http_request_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += sum_slots(offsetof(metric_slot, hist) + b * sizeof(uint64_t));
        sb_printf(out, "subreg_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", BUCKETS[b], cum);
    }
    cum += sum_slots(offsetof(metric_slot, hist) + NBUCKETS * sizeof(uint64_t));
    sb_printf(out, "subreg_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    sb_printf(out, "subreg_http_request_duration_seconds_sum %.6f\n",
              (double)sum_slots(offsetof(metric_slot, dur_sum_us)) / 1e6);
    sb_printf(out, "subreg_http_request_duration_seconds_count %llu\n", cum);
    unsigned long long busy = in_flight();
    sb_printf(out, "# HELP subreg_http_requests_in_flight Requests being handled now.\n"
                   "# TYPE subreg_http_requests_in_flight gauge\nsubreg_http_requests_in_flight %llu\n",
              busy ? busy - 1 : 0 /* not this one */);
}

/* ---- responses -------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Writes the decimal digits of v to buf (at least 21 bytes); returns their count. */
static size_t fmt_uint(char *buf, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return (size_t)n;
}

void req_add_header(req *r, const char *name, const char *value)
{
    if (!r->headers.data) sb_reserve(&r->headers, 256);
    sb_puts(&r->headers, name);
    sb_puts(&r->headers, ": ");
    sb_puts(&r->headers, value);
    sb_puts(&r->headers, "\r\n");
    if (strcasecmp(name, "Cache-Control") == 0) r->cache_control_set = true;
    if (strcasecmp(name, "Connection") == 0 && strcasecmp(value, "close") == 0) r->closing = true;
}

void req_add_etag(req *r, int64_t version)
{
    char v[32];
    snprintf(v, sizeof v, "\"%lld\"", (long long)version);
    req_add_header(r, "ETag", v);
}

/* Does the client want the connection kept open? (civetweb decides the same way
 * after the callback: HTTP/1.1 without "Connection: close", or an explicit
 * keep-alive.) */
static bool client_keeps_alive(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *c = mg_get_header(conn, "Connection");
    if (c) return strcasestr(c, "keep-alive") != NULL;
    return ri && ri->http_version && strcmp(ri->http_version, "1.1") == 0;
}

/* The Date header, formatted once per second per thread. */
static const char *http_date(void)
{
    static __thread char buf[40];
    static __thread time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* Each worker thread builds its responses in one buffer it keeps (freed when
 * civetweb ends the thread). */
static __thread strbuf response_buf, header_buf;

static void on_thread_exit(const struct mg_context *c, int thread_type, void *user)
{
    (void)c;
    (void)thread_type;
    (void)user;
    sb_free(&response_buf);
    sb_free(&header_buf);
    if (settings.thread_exit) settings.thread_exit();
}

static void write_response(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
                           const char *request_id, const char *extra, bool head, bool closing, bool cache_set)
{
    bool has_body = status != 204 && status != 304;
    if (closing) {
        /* civetweb must learn that this connection ends (e.g. an unread 413
         * body): let it build the header block. */
        char num[32];
        mg_response_header_start(conn, status);
        if (ctype) mg_response_header_add(conn, "Content-Type", ctype, -1);
        if (has_body) {
            snprintf(num, sizeof num, "%zu", len);
            mg_response_header_add(conn, "Content-Length", num, -1);
        }
        mg_response_header_add(conn, "X-Request-Id", request_id, -1);
        mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
        if (!cache_set) mg_response_header_add(conn, "Cache-Control", "no-store", -1);
        mg_response_header_add_lines(conn, extra);
        mg_response_header_send(conn);
        if (!head && len > 0 && has_body) mg_write(conn, body, len);
        return;
    }
    /* The usual path: status line, headers and (small) body in one write, built
     * in a buffer each worker thread keeps: sized once, then filled by copies
     * of known lengths (the public list is answered tens of thousands of times
     * a second; per-piece strlen and bounds checks showed in its profile). */
    size_t small = !head && has_body && len <= 65536 ? len : 0;
    const char *why = reason(status), *date = http_date();
    const char *cors = settings.cors_origin && *settings.cors_origin ? settings.cors_origin : NULL;
    size_t why_len = strlen(why), date_len = strlen(date), ctype_len = ctype ? strlen(ctype) : 0,
           rid_len = strlen(request_id), cors_len = cors ? strlen(cors) : 0, extra_len = extra ? strlen(extra) : 0;
    strbuf out = response_buf;
    out.len = 0;
    sb_reserve(&out, 400 + why_len + date_len + ctype_len + rid_len + cors_len + extra_len + small);
    char *w = out.data, num[24];
#define PUT(s, n) (memcpy(w, (s), (n)), w += (n))
#define PUT_LIT(s) PUT(s, sizeof(s) - 1)
    PUT_LIT("HTTP/1.1 ");
    PUT(num, fmt_uint(num, (uint64_t)status));
    PUT_LIT(" ");
    PUT(why, why_len);
    PUT_LIT("\r\nDate: ");
    PUT(date, date_len);
    if (client_keeps_alive(conn)) PUT_LIT("\r\nConnection: keep-alive\r\n");
    else PUT_LIT("\r\nConnection: close\r\n");
    if (ctype) {
        PUT_LIT("Content-Type: ");
        PUT(ctype, ctype_len);
        PUT_LIT("\r\n");
    }
    if (has_body) {
        PUT_LIT("Content-Length: ");
        PUT(num, fmt_uint(num, len));
        PUT_LIT("\r\n");
    }
    PUT_LIT("X-Request-Id: ");
    PUT(request_id, rid_len);
    PUT_LIT("\r\nX-Content-Type-Options: nosniff\r\n");
    if (!cache_set) PUT_LIT("Cache-Control: no-store\r\n");
    if (cors) {
        PUT_LIT("Access-Control-Allow-Origin: ");
        PUT(cors, cors_len);
        PUT_LIT("\r\nAccess-Control-Expose-Headers: ETag, Location, X-Request-Id, Retry-After\r\n");
    }
    if (extra_len) PUT(extra, extra_len);
    PUT_LIT("\r\n");
    size_t head_len = (size_t)(w - out.data);
    if (small) {
        PUT(body, len);
        mg_write(conn, out.data, head_len + len);
    } else {
        mg_write(conn, out.data, head_len);
        if (!head && has_body && len > 0 && body) mg_write(conn, body, len);
    }
#undef PUT_LIT
#undef PUT
    if (out.cap > 262144) sb_free(&out); /* keep a usual size, not the largest ever */
    response_buf = out;
}

void respond(req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->responded) return;
    r->responded = true;
    r->status = status;
    write_response(r->conn, status, content_type, body, len, r->request_id, r->headers.data, r->head, r->closing,
                   r->cache_control_set);
}

void respond_stream_begin(req *r, int status, const char *content_type, size_t len)
{
    if (r->responded) return;
    r->responded = true;
    r->status = status;
    write_response(r->conn, status, content_type, NULL, len, r->request_id, r->headers.data, true, r->closing,
                   r->cache_control_set);
}

bool respond_stream_write(req *r, const void *data, size_t len)
{
    if (r->head) return true;
    return mg_write(r->conn, data, len) == (int)len;
}

void respond_json(req *r, int status, const cJSON *body)
{
    char *s = json_dump(body);
    respond(r, status, "application/json", s, strlen(s));
    free(s);
}

void respond_empty(req *r, int status)
{
    respond(r, status, NULL, "", 0);
}

static cJSON *problem_body(int status, const char *slug, const char *detail, const char *instance,
                           const char *request_id)
{
    cJSON *p = cJSON_CreateObject();
    char type[96];
    snprintf(type, sizeof type, "/problems/%s", slug);
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "title", reason(status));
    cJSON_AddNumberToObject(p, "status", status);
    cJSON_AddStringToObject(p, "detail", detail ? detail : reason(status));
    if (instance) cJSON_AddStringToObject(p, "instance", instance);
    cJSON_AddStringToObject(p, "request_id", request_id);
    return p;
}

static void respond_problem_body(req *r, int status, cJSON *p)
{
    char *s = json_dump(p);
    respond(r, status, "application/problem+json", s, strlen(s));
    free(s);
    cJSON_Delete(p);
}

void respond_problem(req *r, int status, const char *slug, const char *detail)
{
    respond_problem_body(r, status, problem_body(status, slug, detail, r->path, r->request_id));
}

void respond_errors(req *r, int status, const char *slug, const char *detail, verrors *errs)
{
    cJSON *p = problem_body(status, slug, detail, r->path, r->request_id);
    cJSON_AddItemToObject(p, "errors", errs->list);
    errs->list = NULL;
    respond_problem_body(r, status, p);
}

void respond_validation(req *r, verrors *errs)
{
    char detail[96];
    snprintf(detail, sizeof detail, "%d field%s failed validation", errs->count, errs->count == 1 ? "" : "s");
    respond_errors(r, 400, "validation-error", detail, errs);
}

/* ---- request helpers --------------------------------------------------- */

const char *req_header(const req *r, const char *name)
{
    return mg_get_header(r->conn, name);
}

const char *req_query(const req *r, const char *key)
{
    for (int i = 0; i < r->nquery; i++)
        if (strcmp(r->qkey[i], key) == 0) return r->qval[i];
    return NULL;
}

bool req_check_query(req *r, const char *const *allowed)
{
    for (int i = 0; i < r->nquery; i++) {
        bool ok = false;
        for (const char *const *a = allowed; a && *a && !ok; a++) ok = strcmp(*a, r->qkey[i]) == 0;
        char detail[200];
        if (!ok) {
            snprintf(detail, sizeof detail, "unknown query parameter \"%.64s\"", r->qkey[i]);
            respond_problem(r, 400, "malformed-request", detail);
            return false;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(r->qkey[i], r->qkey[j]) == 0) {
                snprintf(detail, sizeof detail, "query parameter \"%.64s\" given twice", r->qkey[i]);
                respond_problem(r, 400, "malformed-request", detail);
                return false;
            }
        }
    }
    return true;
}

static bool media_type_is(const char *header, const char *want)
{
    size_t n = strlen(want);
    if (!header || strncasecmp(header, want, n) != 0) return false;
    const char *p = header + n;
    while (*p == ' ') p++;
    if (*p == '\0') return true;
    if (*p != ';') return false;
    /* Only charset=utf-8 is accepted as a parameter. */
    const char *cs = strcasestr(p, "charset=");
    if (cs) {
        cs += 8;
        if (*cs == '"') cs++;
        if (strncasecmp(cs, "utf-8", 5) != 0) return false;
    }
    return true;
}

cJSON *req_json_body(req *r, const char *media_type)
{
    const char *ct = req_header(r, "Content-Type");
    if (!media_type_is(ct, media_type)) {
        char detail[160];
        snprintf(detail, sizeof detail, "Content-Type must be %s (UTF-8)", media_type);
        respond_problem(r, 415, "unsupported-media-type", detail);
        return NULL;
    }
    char err[128];
    cJSON *v = json_parse_strict(r->body ? r->body : "", r->body_len, err, sizeof err);
    if (!v) {
        respond_problem(r, 400, "malformed-request", err);
        return NULL;
    }
    return v;
}

const char *req_if_match(req *r)
{
    const char *h = req_header(r, "If-Match");
    if (!h) respond_problem(r, 428, "precondition-required", "this request needs If-Match with the resource's ETag");
    return h;
}

bool if_match_allows(const char *header, const char *etag)
{
    /* RFC 9110 13.1.1: "*", or a list of entity tags compared strongly (a weak
     * W/"…" tag never matches). */
    size_t elen = strlen(etag);
    for (const char *p = header; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *end = p;
        if (*p == '"') {
            end = strchr(p + 1, '"');
            end = end ? end + 1 : p + strlen(p);
        } else {
            while (*end && *end != ',') end++;
        }
        size_t len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if ((len == 1 && *p == '*') || (len == elen && memcmp(p, etag, len) == 0)) return true;
        p = end;
    }
    return false;
}

/* ---- rate limit on the public paths ---------------------------------------
 * A token bucket per client address (rate per minute, a burst of ten seconds'
 * worth), in a fixed table: a colliding address resets the slot, which can only
 * err on the side of letting a request through. */

#define RL_SLOTS 4096
#define RL_STRIPES 64

typedef struct {
    char ip[48];
    double tokens;
    int64_t last_ms;
} bucket;

static bucket buckets[RL_SLOTS];
static pthread_mutex_t rl_mu[RL_STRIPES];
static netpolicy exempt; /* SUBREG_RATE_LIMIT_EXEMPT */

/* True when the request may proceed; otherwise *retry_after is set (seconds). */
static bool rate_allow(const char *ip, int *retry_after)
{
    int rate = settings.public_rate_per_min;
    if (rate <= 0 || netpolicy_lists(&exempt, ip)) return true;
    double burst = rate / 6.0 < 10 ? 10 : rate / 6.0;
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    bucket *b = &buckets[h % RL_SLOTS];
    pthread_mutex_t *mu = &rl_mu[h % RL_STRIPES];
    int64_t now = mono_ms();
    pthread_mutex_lock(mu);
    if (strcmp(b->ip, ip) != 0) {
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens = burst;
        b->last_ms = now;
    }
    b->tokens += (double)(now - b->last_ms) * rate / 60000.0;
    if (b->tokens > burst) b->tokens = burst;
    b->last_ms = now;
    bool ok = b->tokens >= 1.0;
    if (ok) b->tokens -= 1.0;
    else *retry_after = (int)ceil((1.0 - b->tokens) * 60.0 / rate);
    pthread_mutex_unlock(mu);
    return ok;
}

static bool is_public_path(const char *path)
{
    return strncmp(path, "/public/", 8) == 0 || strcmp(path, "/subprocessors") == 0;
}

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

static bool parse_query(req *r, const char *qs)
{
    if (!qs || !*qs) return true;
    const char *p = qs;
    while (*p) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            if (r->nquery == MAX_QUERY) return false;
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
            if (kd < 0 || vd < 0 || !utf8_valid(k, strlen(k)) || !utf8_valid(v, strlen(v)) || klen == 0) return false;
        }
        p += len;
        if (*p == '&') p++;
    }
    return true;
}

/* Matches path against pattern; captures the {param} segment. */
static bool match(const char *pattern, const char *path, char **param)
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
            shadowed = strcmp(routes[j].method, routes[i].method) == 0 && match(routes[j].pattern, routes[i].pattern, &param);
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
        if (auth_verify(settings.auth, tok, now_ms() / 1000, &r->who, why, sizeof why)) {
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
    long max = r->route->max_body ? r->route->max_body : settings.max_body;
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

/* JSON string escaping for log values (paths may hold anything). */
static void json_escape(strbuf *sb, const char *s)
{
    sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_append(sb, e, 2);
        } else if (*p < 0x20) {
            sb_printf(sb, "\\u%04x", *p);
        } else {
            sb_append(sb, (const char *)p, 1);
        }
    }
    sb_puts(sb, "\"");
}

static void log_request(const req *r)
{
    int level = r->status >= 500 ? LOG_ERROR : LOG_INFO;
    if (!log_enabled(level)) return;
    strbuf f = {0};
    sb_printf(&f, ",\"request_id\":\"%s\",\"method\":", r->request_id);
    json_escape(&f, r->method);
    sb_puts(&f, ",\"path\":");
    json_escape(&f, r->path);
    sb_printf(&f, ",\"status\":%d,\"duration_ms\":%lld", r->status, (long long)(mono_ms() - r->started_ms));
    if (r->authenticated) {
        sb_puts(&f, ",\"sub\":");
        json_escape(&f, r->who.sub);
    }
    log_event(level, "request", f.data);
    sb_free(&f);
}

static int draining; /* set by http_drain: new requests are turned away */

static int begin_request(struct mg_connection *conn)
{
    metric_slot *m = slot();
    __atomic_add_fetch(&m->started, 1, __ATOMIC_ACQ_REL);
    const struct mg_request_info *ri = mg_get_request_info(conn);
    req r = {0};
    r.conn = conn;
    r.method = ri->request_method;
    r.path = ri->local_uri ? ri->local_uri : "/";
    r.started_ms = mono_ms();
    r.head = strcmp(r.method, "HEAD") == 0;
    r.headers = header_buf; /* the thread's buffer for extra headers, emptied */
    r.headers.len = 0;
    if (r.headers.data) r.headers.data[0] = '\0';
    set_request_id(conn, r.request_id);

    if (__atomic_load_n(&draining, __ATOMIC_ACQUIRE)) {
        /* stopping: a complete answer, and the connection ends with it */
        req_add_header(&r, "Connection", "close");
        req_add_header(&r, "Retry-After", "5");
        respond_problem(&r, 503, "service-unavailable", "the service is stopping; retry (another instance)");
        goto done;
    }
    if (!utf8_valid(r.path, strlen(r.path))) {
        respond_problem(&r, 400, "malformed-request", "the path is not valid UTF-8");
        goto done;
    }
    if (!parse_query(&r, ri->query_string)) {
        respond_problem(&r, 400, "malformed-request", "the query string is malformed");
        goto done;
    }

    const char *lookup_method = r.head ? "GET" : r.method;
    r.route = find_exact(lookup_method, r.path);
    for (int i = 0; i < nroutes && !r.route; i++) {
        if (strcmp(routes[i].method, lookup_method) != 0) continue;
        char *param = NULL;
        if (match(routes[i].pattern, r.path, &param)) {
            r.route = &routes[i];
            r.param = param;
        }
    }
    if (!r.route) {
        strbuf allow = {0};
        for (int i = 0; i < nroutes; i++) {
            char *param = NULL;
            if (!match(routes[i].pattern, r.path, &param)) continue;
            free(param);
            if (!strstr(allow.data ? allow.data : "", routes[i].method)) {
                if (allow.len) sb_puts(&allow, ", ");
                sb_puts(&allow, routes[i].method);
                if (strcmp(routes[i].method, "GET") == 0) sb_puts(&allow, ", HEAD");
            }
        }
        if (allow.len == 0) {
            respond_problem(&r, 404, "not-found", "no such path");
        } else if (strcmp(r.method, "OPTIONS") == 0) {
            req_add_header(&r, "Allow", allow.data);
            respond_empty(&r, 204);
        } else {
            req_add_header(&r, "Allow", allow.data);
            char d[160];
            snprintf(d, sizeof d, "%.16s is not allowed here; allowed: %s", r.method, allow.data);
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
    r.route->fn(&r);
    if (!r.responded) respond_problem(&r, 500, "internal-error", "the handler produced no response");

done:
    count_request(r.status, mono_ms() - r.started_ms);
    log_request(&r);
    for (int i = 0; i < r.nquery; i++) {
        free(r.qkey[i]);
        free(r.qval[i]);
    }
    free(r.param);
    free(r.body);
    if (r.headers.cap > 65536) sb_free(&r.headers);
    header_buf = r.headers;
    __atomic_add_fetch(&m->finished, 1, __ATOMIC_ACQ_REL);
    return r.status;
}

/* civetweb's own errors (malformed request line, header block too large, …). */
static int http_error(struct mg_connection *conn, int status, const char *msg)
{
    char rid[130];
    set_request_id(conn, rid);
    const char *slug = status == 413 || status == 431 ? "payload-too-large"
                       : status == 404              ? "not-found"
                       : status >= 500 && status != 505 ? "internal-error"
                                                    : "malformed-request";
    cJSON *p = problem_body(status, slug, msg && *msg ? msg : NULL, NULL, rid);
    char *s = json_dump(p);
    cJSON_Delete(p);
    write_response(conn, status, "application/problem+json", s, strlen(s), rid, "Connection: close\r\n", false, true,
                   false);
    free(s);
    count_request(status, 0);
    return 0;
}

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char fields[64];
    snprintf(fields, sizeof fields, ",\"component\":\"civetweb\"");
    log_event(LOG_WARN, message, fields);
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
    settings = *s;
    exempt = *s->rate_limit_exempt;
    for (int i = 0; i < RL_STRIPES; i++) pthread_mutex_init(&rl_mu[i], NULL);
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
                             NULL};
    struct mg_callbacks cb = {0};
    cb.begin_request = begin_request;
    cb.http_error = http_error;
    cb.log_message = log_message;
    cb.exit_thread = on_thread_exit;
    mg_init_library(0);
    ctx = mg_start(&cb, NULL, options);
    if (!ctx) {
        snprintf(err, errlen, "SUBREG_LISTEN: cannot listen on %s (in use, or not host:port)", s->listen);
        free_routes();
        mg_exit_library();
        return false;
    }
    return true;
}

int http_drain(int timeout_ms)
{
    __atomic_store_n(&draining, 1, __ATOMIC_RELEASE);
    int64_t until = mono_ms() + timeout_ms;
    int idle = 0;
    /* idle twice in a row, 20 ms apart: a request civetweb has read but not yet
     * handed over gets its moment to show up */
    while (idle < 2 && mono_ms() < until) {
        idle = in_flight() == 0 ? idle + 1 : 0;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return (int)in_flight();
}

void http_stop(void)
{
    if (ctx) mg_stop(ctx);
    ctx = NULL;
    mg_exit_library();
    free_routes();
}
