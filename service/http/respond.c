/* Responses (JSON, problem+json, streams, civetweb's own errors' bodies) and
 * the request helpers (headers, query, media types, If-Match). */
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

#include "http_internal.h"
#include "subreg/http.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"


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
    if (strcasecmp(name, "Connection") == 0 && strcasecmp(value, "close") == 0) {
        if (r->closing) return; /* said once */
        r->closing = true;
    }
    if (!r->headers.data) sb_reserve(&r->headers, 256);
    sb_puts(&r->headers, name);
    sb_puts(&r->headers, ": ");
    sb_puts(&r->headers, value);
    sb_puts(&r->headers, "\r\n");
    if (strcasecmp(name, "Cache-Control") == 0) r->cache_control_set = true;
}

void format_etag(int64_t version, char out[32])
{
    snprintf(out, 32, "\"%lld\"", (long long)version);
}

void req_add_etag(req *r, int64_t version)
{
    char v[32];
    format_etag(version, v);
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

/* Each worker thread builds its responses in one buffer it keeps while it is
 * small (freed when civetweb ends the thread). */
static __thread strbuf response_buf;
__thread strbuf header_buf;

void on_thread_exit(const struct mg_context *c, int thread_type, void *user)
{
    (void)c;
    (void)thread_type;
    (void)user;
    sb_free(&response_buf);
    sb_free(&header_buf);
    if (http_cfg.thread_exit) http_cfg.thread_exit();
}

void write_response(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
                    const char *request_id, const char *extra, bool head, bool closing, bool cache_set)
{
    bool has_body = status != 204 && status != 304;
    if (closing) {
        /* civetweb must learn that this connection ends (e.g. an unread 413
         * body, the drain): it closes the connection after the answer. */
        mg_disable_connection_keep_alive(conn);
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
    const char *cors = http_cfg.cors_origin && *http_cfg.cors_origin ? http_cfg.cors_origin : NULL;
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
    /* Keep a small buffer per thread, not the largest response ever: with hundreds of
     * worker threads, 64 KiB each would be RSS that only grows (bench/soak). */
    if (out.cap > 16384) sb_free(&out);
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

cJSON *problem_body(int status, const char *slug, const char *detail, const char *instance,
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
    respond_problem_body(r, status, problem_body(status, slug, detail, r->instance, r->request_id));
}

void respond_errors(req *r, int status, const char *slug, const char *detail, verrors *errs)
{
    cJSON *p = problem_body(status, slug, detail, r->instance, r->request_id);
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

bool req_query_flag(req *r, const char *name, bool *out)
{
    const char *v = req_query(r, name);
    *out = v && strcmp(v, "true") == 0;
    if (!v || *out || strcmp(v, "false") == 0) return true;
    char detail[120];
    snprintf(detail, sizeof detail, "%.64s must be true or false", name);
    respond_problem(r, 400, "malformed-request", detail);
    return false;
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
        /* a quoted tag, weak or not, is one token: a comma or "*" inside it is text */
        const char *q = p[0] == 'W' && p[1] == '/' && p[2] == '"' ? p + 2 : p;
        if (*q == '"') {
            end = strchr(q + 1, '"');
            end = end ? end + 1 : q + strlen(q);
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

