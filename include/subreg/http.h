/* http: the civetweb glue. Every request enters one callback that builds a request
 * context (request id, decoded query, principal, bounded body), finds the route in
 * one table and writes JSON or problem+json — civetweb's own error pages included.
 * Handlers never touch civetweb directly. */
#ifndef SUBREG_HTTP_H
#define SUBREG_HTTP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "subreg/auth.h"
#include "subreg/schema.h"
#include "subreg/util.h"
#include "subreg/webhook.h"

struct mg_connection;
struct route;

#define MAX_QUERY 32

typedef struct req {
    struct mg_connection *conn;
    const char *method;
    const char *path;         /* percent-decoded once: what routing sees */
    const char *instance;     /* the path as received (percent-encoded): problem+json's instance */
    char request_id[130];
    char *qkey[MAX_QUERY];
    char *qval[MAX_QUERY];
    int nquery;
    principal who;
    bool authenticated;
    char *body;
    size_t body_len;
    char *param;              /* the {id} of the route, if any */
    const struct route *route;
    int status;               /* of the response, for the log */
    bool responded;
    bool head;                /* HEAD: headers only */
    int64_t started_ms;       /* monotonic */
    strbuf headers;           /* extra response headers, "Name: value\r\n" lines */
    bool cache_control_set;   /* headers holds Cache-Control */
    bool closing;             /* headers holds Connection: close */
} req;

typedef void (*handler_fn)(req *r);

typedef struct route {
    const char *method;
    const char *pattern; /* "/v1/subprocessors/{id}": one {param} segment at most */
    handler_fn fn;
    role min_role;       /* ROLE_NONE: public */
    const void *data;    /* handler's descriptor (the resource for CRUD routes) */
    long max_body;       /* 0: SUBREG_MAX_BODY_BYTES */
} route;

typedef struct {
    const char *listen;
    int threads;
    int keep_alive_ms;
    int request_deadline_ms;       /* for each request's database work (store_set_deadline) */
    long max_body;
    const char *cors_origin;
    const auth_ctx *auth;
    int public_rate_per_min;       /* 0: unlimited */
    const netpolicy *rate_limit_exempt; /* addresses the public rate limit spares */
    void (*thread_exit)(void);     /* called on each worker thread as it ends */
} http_settings;

/* Appends the routes rs[0..n) to out (capacity cap); returns how many. */
int add_routes(route *out, int cap, const route *rs, size_t n);

/* Starts serving routes (copied). Returns false with a message on failure. */
bool http_start(const http_settings *s, const route *routes, int nroutes, char *err, size_t errlen);
/* Graceful stop, part 1 (service/http/drain.c): new connections are refused,
 * every request on a connection already accepted is answered (Connection:
 * close) and its connection closed; returns when none is left (idle keep-alive
 * connections aside) or after timeout_ms, with the number of requests still
 * running. */
int http_drain(int timeout_ms);
void http_stop(void);

/* Responses. Exactly one per request; later calls are ignored. */
void respond(req *r, int status, const char *content_type, const char *body, size_t len);
void respond_json(req *r, int status, const cJSON *body);
void respond_problem(req *r, int status, const char *slug, const char *detail);
void respond_validation(req *r, verrors *errs);
/* A problem with an errors list ({pointer, message}), e.g. 422 for unknown references. */
void respond_errors(req *r, int status, const char *slug, const char *detail, verrors *errs);
void respond_empty(req *r, int status);
/* A body written in pieces: headers with the final length first, then the bytes.
 * write returns false when the client went away. */
void respond_stream_begin(req *r, int status, const char *content_type, size_t len);
bool respond_stream_write(req *r, const void *data, size_t len);
void req_add_header(req *r, const char *name, const char *value);
/* A document's ETag: its version as a strong tag ("\"3\""). */
void format_etag(int64_t version, char out[32]);
void req_add_etag(req *r, int64_t version);

const char *req_header(const req *r, const char *name);
const char *req_query(const req *r, const char *key);
/* Answers 400 and returns false when the query has a parameter not in allowed
 * (NULL-terminated) or a parameter twice. */
bool req_check_query(req *r, const char *const *allowed);
/* A true/false query parameter (absent: false) into *out; answers 400 and
 * returns false for any other value. */
bool req_query_flag(req *r, const char *name, bool *out);
/* Checks Content-Type (media type only, parameters ignored; charset must be
 * utf-8 when given), parses the body strictly. Answers 415/400 itself. */
cJSON *req_json_body(req *r, const char *media_type);
/* The If-Match header, or NULL after answering 428 itself. */
const char *req_if_match(req *r);
/* Does an If-Match value ("*", or a list of strong entity tags) allow the
 * current ETag (e.g. "\"3\"")? */
bool if_match_allows(const char *header, const char *etag);

/* Prometheus text of the HTTP counters. */
void http_metrics(strbuf *out);

#endif
