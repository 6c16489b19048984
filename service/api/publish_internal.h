/* publish_internal.h: what the publication files share (service/api only):
 *   publications.c  loading publications, POST/GET /v1/publications, the routes
 *   scheduler.c     the thread that records when a version takes effect and
 *                   rebuilds the snapshot
 *   public_list.c   the in-memory snapshot of the rendered public forms, and the
 *                   public endpoints that serve it (no token, no database)
 * A snapshot is reference-counted: snapshot_get takes a reference (under a lock),
 * snapshot_release drops it; the last release frees it. snapshot_swap puts a new
 * one in place and releases the old. */
#ifndef SUBREG_PUBLISH_INTERNAL_H
#define SUBREG_PUBLISH_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

#include "subreg/api.h"

typedef struct {
    char *body;
    size_t len;
    char etag[48];
} form;

enum { F_JSON, F_JSON_DE, F_JSON_EN, F_CSV_DE, F_CSV_EN, F_XLSX_DE, F_XLSX_EN, F_HTML_DE, F_HTML_EN, F_ANNEX_DE, F_ANNEX_EN, F_ATOM, F_VERSIONS, F_COUNT };

/* One list's rendered forms: the whole list, or one service's (its items, its
 * changes, its versions, its own ETags and Last-Modified). */
typedef struct {
    const char *service;    /* NULL: the whole list; else the id (in services) */
    int current;            /* number in effect for this list, 0 if none */
    char last_modified[40]; /* HTTP-date */
    time_t last_modified_s;
    form forms[F_COUNT];
    int nversions;
    form *versions;         /* index = number - 1 */
} list_view;

typedef struct snapshot {
    int refs;
    int current;            /* number in effect, 0 if none */
    int latest;             /* highest number */
    int64_t next_change_ms; /* earliest future effective_at, 0 if none */
    cJSON *services;        /* public_services of the live publications */
    int nviews;             /* 1 + one per public service, in services' order */
    list_view *views;       /* [0]: the whole list */
} snapshot;

/* All publications, oldest first (publications.c). */
store_status load_publications(cJSON **out, bool with_items);
/* The publication in effect at now and the announced ones, with their frozen
 * items, oldest first; pubs as load_publications gives them without items. */
store_status load_live_publications(const cJSON *pubs, int64_t now, cJSON **out);
/* A document's RFC 3339 member in ms (0 when absent). */
int64_t ts_ms(const cJSON *doc, const char *name);

/* public_list.c */
/* prev (may be NULL): the snapshot it replaces, whose lists keep their
 * Last-Modified where their forms did not change. */
snapshot *build_snapshot(const cJSON *pubs, int64_t now, const snapshot *prev);
snapshot *snapshot_get(void);
void snapshot_release(snapshot *s);
void snapshot_swap(snapshot *fresh);
int public_list_routes(route *out, int cap);

#endif
