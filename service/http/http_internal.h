/* http_internal.h: what the HTTP layer's files share (service/http only):
 *   server.c     civetweb glue: the entry callback, routing, authentication,
 *                bodies, the request log, start, drain and stop
 *   respond.c    responses (problem+json included) and the request helpers
 *   metrics.c    per-thread request counters and /metrics' HTTP part
 *   ratelimit.c  the token buckets of the public paths
 *   drain.c      the graceful stop: stop accepting, answer, then stop */
#ifndef SUBREG_HTTP_INTERNAL_H
#define SUBREG_HTTP_INTERNAL_H

#include <civetweb.h>
#include <stdbool.h>
#include <stdint.h>

#include "subreg/http.h"

extern http_settings http_cfg; /* as given to http_start */

/* server.c: the request line's parsers (tests/fuzz/fuzz_query.c drives them).
 * The query string into r->qkey/qval/nquery, percent- and '+'-decoded: NULL
 * when fine, else what is wrong with it (undecodable, %00, not UTF-8, an empty
 * key, more than MAX_QUERY parameters); the caller frees r->nquery keys and
 * values either way. */
const char *http_parse_query(req *r, const char *qs);
/* Whether path matches pattern ("/v1/x/{id}": one {param} segment of 1 to 200
 * bytes without '/'); a match puts the segment into *param (the caller frees). */
bool http_route_match(const char *pattern, const char *path, char **param);

/* metrics.c */
void count_request(int status, int64_t dur_ms);
void count_started(void);  /* a request entered begin_request */
void count_finished(void); /* ... and left it */
unsigned long long in_flight(void);
unsigned long long requests_started(void); /* since the start */

/* respond.c: the worker thread's reusable buffer for extra headers (begin_request
 * hands it to the req and takes it back), freed by on_thread_exit. */
extern __thread strbuf header_buf;
void on_thread_exit(const struct mg_context *c, int thread_type, void *user);
void write_response(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
                    const char *request_id, const char *extra, bool head, bool closing, bool cache_set);
cJSON *problem_body(int status, const char *slug, const char *detail, const char *instance,
                    const char *request_id);

/* ratelimit.c */
void rate_limit_init(const netpolicy *exempt_nets);
/* True when the request may proceed; otherwise *retry_after is set (seconds). */
bool rate_allow(const char *ip, int *retry_after);
/* The set of buckets an address hashes to (for the unit test's colliding pairs). */
unsigned rate_set_of(const char *ip);
bool is_public_path(const char *path);

/* drain.c: drain_init records the listening ports once civetweb listens;
 * the two callbacks count the connections a worker holds (init_connection,
 * connection_close). */
void drain_init(struct mg_context *ctx);
bool http_draining(void); /* the stop has begun: answers close their connection */
int drain_connection_opened(const struct mg_connection *conn, void **data);
void drain_connection_closed(const struct mg_connection *conn);

#endif
