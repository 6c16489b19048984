/* api: the HTTP handlers. crud.c serves every resource of resource.h through one
 * set of handlers; ops.c the operational endpoints and the audit trail;
 * documents.c PDFs; compliance.c findings and reports; publications.c the public
 * list, its scheduler and publications; recovery.c the recovery thread. */
#ifndef SUBREG_API_H
#define SUBREG_API_H

#include "subreg/http.h"
#include "subreg/store.h"
#include "subreg/write.h"

/* Process-wide state the handlers read. */
typedef struct {
    const char *test_fault;     /* SUBREG_TEST_FAULT */
    const char *openapi_yaml;   /* embedded spec */
    size_t openapi_len;
    long max_document_bytes;    /* SUBREG_MAX_DOCUMENT_BYTES */
    const char *public_base_url; /* SUBREG_PUBLIC_BASE_URL: absolute links (Atom) */
} api_env;

extern api_env api_cfg;

/* The route table: operations, every resource's CRUD, the audit trail. Returns
 * the number of routes written into out (capacity cap). */
int api_routes(route *out, int cap); /* -1: a descriptor declares no roles */

struct resource;

/* Who a request's writes are by (write.h). */
#define REQ_ORIGIN(r) (&(write_origin){(r)->who.sub, (r)->request_id, 0})
/* Answers 409 (naming the referrers) and returns true while documents refer to id. */
bool refuse_if_referenced(req *r, const char *collection, const char *id);
/* Answers 409 (naming the publications) and returns true while the publication
 * in effect or an announced one lists the subprocessor (publications.c): nothing
 * leaves the public list without a publication. */
bool refuse_if_published(req *r, const char *subprocessor_id);

/* The route tables of the handler files. */
int crud_routes(route *out, int cap);
int document_routes(route *out, int cap, long max_document_bytes);
int compliance_routes(route *out, int cap);
int publication_routes(route *out, int cap);
int export_routes(route *out, int cap);

/* `subreg restore FILE` (export.c): an export back into an empty database.
 * 0 done, 1 the database failed (run it again), 2 the file is refused. */
int export_restore(const char *path);

/* The generic write path's two steps (crud.c), used by its handlers and by
 * writers of many documents (imports.c).
 * crud_check_state: the schema, the descriptor's rules and its references for
 * a new state (before NULL for a create): 0, or 400 (errs), 422 (detail, and
 * errs for missing references), 503 (*st).
 * crud_write_state: writes a checked client state through doc_write — a create
 * (raw NULL; on_create may put members shown once into extra, which may be
 * NULL) or an update of raw (the stored document; before: its public view,
 * for on_update; what the client does not send is carried over). *out
 * (optional) receives the written document, internal members included. */
int crud_check_state(const struct resource *res, const cJSON *before, const cJSON *client, verrors *errs,
                     char *detail, size_t detail_len, store_status *st);
store_status crud_write_state(const struct resource *res, const write_origin *by, const char *id, const cJSON *raw,
                              const cJSON *before, const cJSON *client, cJSON *extra, int64_t *version, cJSON **out);
int import_routes(route *out, int cap);

/* Seeds reference documents from a JSON array (subreg migrate); see crud.c. */
store_status crud_seed(const struct resource *res, const char *json, int *inserted, int *updated);

/* Answers the problem for a store failure (404, 409, 412, 503, 500). */
void respond_store_error(req *r, store_status st);

/* Readiness prober (ops.c): pings the database every second for /readyz. */
void readiness_start(void);
void readiness_stop(void);
/* Recovery thread: settles write claims older than lease_ms, every interval_ms. */
void recovery_start(int interval_ms, int lease_ms);
void recovery_stop(void);
/* Publication scheduler: records when versions take effect and keeps the public
 * forms in memory; polls every poll_ms, and at once after a publication is
 * written (publications_changed, publication.h). */
void publish_start(int poll_ms);
void publish_stop(void);
/* A worker thread ends: drops the public snapshot it holds. */
void publish_thread_exit(void);

/* Milliseconds since the recovery thread last completed a sweep (readiness). */
int64_t recovery_idle_ms(void);

#endif
