/* Operational endpoints: liveness, readiness, metrics, the OpenAPI document, and
 * the audit trail (a read-only list over the audit collection). */
#include <stdio.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/api.h"
#include "subreg/notify.h"
#include "subreg/schema.h"
#include "subreg/resource.h"
#include "subreg/worker.h"

api_env api_cfg;

void list_page(req *r, const char *collection, const filter_def *filters, bson_t *filter);

static void handle_healthz(req *r)
{
    respond(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* Readiness comes from a prober that pings the database every second:
 * /readyz answers from its last result at once, whatever the database does (a
 * frozen database holds the ping until the socket timeout, not the request). */
#define PING_INTERVAL_MS 1000
#define PING_STALE_MS 2500

static worker prober;
static bool answered_once; /* no readiness before the first answer */

static int ping_round(void *arg)
{
    (void)arg;
    if (store_ping() != ST_OK) return -1; /* the worker's idle time keeps growing */
    __atomic_store_n(&answered_once, true, __ATOMIC_RELEASE);
    return 0;
}

void readiness_start(void)
{
    prober = (worker){.round = ping_round, .interval_ms = PING_INTERVAL_MS};
    worker_start(&prober);
}

void readiness_stop(void)
{
    worker_stop(&prober);
}

/* Why the service is not ready (written into d), or NULL when it is: /readyz
 * answers 503 with it, /metrics reports subreg_ready 0. */
static const char *not_ready(char *d, size_t n)
{
    int64_t since = worker_idle_ms(&prober);
    if (since > PING_STALE_MS || !__atomic_load_n(&answered_once, __ATOMIC_ACQUIRE)) {
        snprintf(d, n, "the database is unreachable (no answer to a ping for %lld ms)", (long long)since);
        return d;
    }
    /* The recovery thread sweeps every few seconds; a sweep stuck for a minute
     * means interrupted writes are not being settled. */
    if (recovery_idle_ms() > 60000) return "the recovery thread is not running";
    if (notify_idle_ms() > 120000) return "the webhook delivery thread is not running";
    return NULL;
}

static void handle_readyz(req *r)
{
    char d[120];
    const char *why = not_ready(d, sizeof d);
    if (why) {
        req_add_header(r, "Retry-After", "5");
        respond_problem(r, 503, "service-unavailable", why);
        return;
    }
    respond(r, 200, "application/json", "{\"status\":\"ready\"}", 18);
}

static void handle_metrics(req *r)
{
    strbuf sb = {0};
    char d[120];
    http_metrics(&sb);
    sb_printf(&sb, "# HELP subreg_ready 1 when /readyz answers 200, 0 when it answers 503.\n"
                   "# TYPE subreg_ready gauge\nsubreg_ready %d\n",
              not_ready(d, sizeof d) ? 0 : 1);
    sb_printf(&sb, "# HELP subreg_recovery_idle_seconds Time since the recovery thread last completed a sweep.\n"
                   "# TYPE subreg_recovery_idle_seconds gauge\nsubreg_recovery_idle_seconds %.3f\n",
              (double)recovery_idle_ms() / 1000.0);
    notify_metrics(&sb);
    respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", sb.data, sb.len);
    sb_free(&sb);
}

static void handle_openapi(req *r)
{
    req_add_header(r, "Cache-Control", "public, max-age=300");
    respond(r, 200, "application/yaml; charset=utf-8", api_cfg.openapi_yaml, api_cfg.openapi_len);
}

static const char *const ACTIONS[] = {"create", "update", "delete", "effective", NULL};
static const field F_ENTITY_TYPE = {.type = FT_STRING, .min = 1, .max = 64};
static const field F_ENTITY_ID = {.type = FT_STRING, .min = 1, .max = 64};
static const field F_ACTOR = {.type = FT_STRING, .min = 1, .max = 255};
static const field F_ACTION = {.type = FT_ENUM, .enums = ACTIONS};
static const field F_SINCE = {.type = FT_DATETIME};

static const filter_def AUDIT_FILTERS[] = {
    {"entity_type", "entity_type", &F_ENTITY_TYPE, NULL},
    {"entity_id", "entity_id", &F_ENTITY_ID, NULL},
    {"actor", "actor", &F_ACTOR, NULL},
    {"action", "action", &F_ACTION, NULL},
    {"since", "at", &F_SINCE, "$gte"},
    {0},
};

static void handle_audit(req *r)
{
    bson_t filter = BSON_INITIALIZER;
    /* Audit ids begin with the time they were made (new_id), which is never before
     * the record's `at`: `since` bounds _id as well, so a page by time is walked in
     * _id order from there instead of collecting every record since then (a minute
     * of slack for clock steps; `at` still decides). */
    int64_t since_ms;
    const char *since = req_query(r, "since");
    if (since && parse_rfc3339(since, &since_ms)) {
        char floor[40];
        bson_t id;
        new_id_floor("au_", since_ms - 60000, floor, sizeof floor);
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id);
        BSON_APPEND_UTF8(&id, "$gte", floor);
        bson_append_document_end(&filter, &id);
    }
    list_page(r, COLL_AUDIT, AUDIT_FILTERS, &filter);
    bson_destroy(&filter);
}

int api_routes(route *out, int cap)
{
    const route ops[] = {
        {"GET", "/healthz", handle_healthz, ROLE_NONE, NULL, 0},
        {"GET", "/readyz", handle_readyz, ROLE_NONE, NULL, 0},
        {"GET", "/metrics", handle_metrics, ROLE_NONE, NULL, 0},
        {"GET", "/openapi.yaml", handle_openapi, ROLE_NONE, NULL, 0},
        {"GET", "/v1/audit", handle_audit, ROLE_READER, NULL, 0},
    };
    int n = add_routes(out, cap, ops, sizeof ops / sizeof ops[0]);
    n += document_routes(out + n, cap - n, api_cfg.max_document_bytes);
    n += compliance_routes(out + n, cap - n);
    n += publication_routes(out + n, cap - n);
    n += export_routes(out + n, cap - n);
    n += import_routes(out + n, cap - n);
    n += notify_routes(out + n, cap - n);
    int crud = crud_routes(out + n, cap - n);
    return crud < 0 ? -1 : n + crud;
}
