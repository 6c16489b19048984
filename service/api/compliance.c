/* The compliance endpoints: load the registry and the reference law, run the
 * pure rules of domain/compliance.c, filter, answer. Computed per request, so a
 * finding appears and disappears with the data that causes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/api.h"
#include "subreg/as_of.h"
#include "subreg/compliance.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/resource.h"

typedef struct {
    cJSON *sp, *ag, *tr, *tom, *co, *ad, *scc, *pub, *cu, *ob;
    compliance_input in;
    char today[16], now[32];
} loaded;

static void loaded_free(loaded *l)
{
    cJSON_Delete(l->sp);
    cJSON_Delete(l->ag);
    cJSON_Delete(l->tr);
    cJSON_Delete(l->tom);
    cJSON_Delete(l->co);
    cJSON_Delete(l->ad);
    cJSON_Delete(l->scc);
    cJSON_Delete(l->pub);
    cJSON_Delete(l->cu);
    cJSON_Delete(l->ob);
}

/* The registry's documents: today's, or (a past as_of) as they were at the end
 * of that day, reconstructed from the audit trail. The reference law is always
 * today's: its documents carry the dates the law took effect and ended
 * (adopted_on, valid_until, cut-offs), which the rules compare with the day
 * evaluated, and its audit trail only says when this registry learned of it
 * (the seed), not when it was in force. */
static store_status load_documents(const as_of *when, cJSON **const *dst, const resource *const *res, size_t n)
{
    store_status st = ST_OK;
    if (when->past) {
        cJSON *out[16] = {0};
        st = registry_as_of(when, res, n, out);
        for (size_t i = 0; i < n; i++) *dst[i] = out[i];
        return st;
    }
    for (size_t i = 0; i < n && st == ST_OK; i++) st = store_list_all(res[i]->collection, dst[i]);
    return st;
}

static bool load_registry(req *r, loaded *l, const as_of *when)
{
    memset(l, 0, sizeof *l);
    const resource *registry[] = {&RES_SUBPROCESSOR, &RES_AGREEMENT, &RES_TRANSFER, &RES_TOM, &RES_CUSTOMER,
                                  &RES_OBJECTION};
    cJSON **const registry_dst[] = {&l->sp, &l->ag, &l->tr, &l->tom, &l->cu, &l->ob};
    const resource *law[] = {&RES_COUNTRY, &RES_ADEQUACY, &RES_SCC_SET};
    cJSON **const law_dst[] = {&l->co, &l->ad, &l->scc};
    const as_of today = {.past = false};
    store_status st;
    if (when->past) {
        /* one pass over the audit trail for the registry and the publications */
        const resource *all[] = {&RES_SUBPROCESSOR, &RES_AGREEMENT, &RES_TRANSFER, &RES_TOM,
                                 &RES_CUSTOMER,     &RES_OBJECTION, &RES_PUBLICATION};
        cJSON **const all_dst[] = {&l->sp, &l->ag, &l->tr, &l->tom, &l->cu, &l->ob, &l->pub};
        st = load_documents(when, all_dst, all, sizeof all / sizeof all[0]);
    } else {
        st = load_documents(when, registry_dst, registry, sizeof registry / sizeof registry[0]);
        /* the publications without their frozen items, but for the version in effect */
        if (st == ST_OK) st = store_list_all_omit(COLL_PUBLICATIONS, PUBLICATION_FROZEN, &l->pub);
    }
    if (st == ST_OK) st = load_documents(&today, law_dst, law, sizeof law / sizeof law[0]);
    /* "now" of a past day is its last second */
    int64_t now = when->past && when->end_ms - 1000 < now_ms() ? when->end_ms - 1000 : now_ms();
    const cJSON *current = st == ST_OK ? publication_in_effect(l->pub, now) : NULL;
    cJSON *full = NULL;
    if (current && when->past)
        st = as_of_fill_omitted(&RES_PUBLICATION, (cJSON *)current);
    else if (current && (st = store_get(COLL_PUBLICATIONS, json_get_str(current, "id"), &full)) == ST_OK)
        cJSON_ReplaceItemViaPointer(l->pub, (cJSON *)current, full);
    if (st != ST_OK) {
        loaded_free(l);
        respond_store_error(r, st);
        return false;
    }
    snprintf(l->today, sizeof l->today, "%s", when->date);
    format_rfc3339(now, l->now);
    l->in = (compliance_input){.subprocessors = l->sp,
                               .agreements = l->ag,
                               .transfers = l->tr,
                               .tom_documents = l->tom,
                               .countries = l->co,
                               .adequacy_decisions = l->ad,
                               .scc_sets = l->scc,
                               .publications = l->pub,
                               .customers = l->cu,
                               .objections = l->ob,
                               .today = l->today,
                               .now = l->now,
                               .horizon_days = 30};
    return true;
}

static bool parse_days(req *r, const char *name, int def, int *out)
{
    const char *v = req_query(r, name);
    *out = def;
    if (!v) return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0 || n > 3650) {
        char d[96];
        snprintf(d, sizeof d, "%s must be an integer from 0 to 3650", name);
        respond_problem(r, 400, "malformed-request", d);
        return false;
    }
    *out = (int)n;
    return true;
}


static bool one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(*list, v) == 0) return true;
    return false;
}

static void handle_findings(req *r)
{
    static const char *const allowed[] = {"rule", "severity", "subprocessor_id", "within_days", "as_of", NULL};
    if (!req_check_query(r, allowed)) return;
    const char *rule = req_query(r, "rule"), *sev = req_query(r, "severity"), *sp = req_query(r, "subprocessor_id");
    if ((rule && !one_of(rule, COMPLIANCE_RULES)) || (sev && !one_of(sev, COMPLIANCE_SEVERITIES)) || (sp && !is_id(sp))) {
        respond_problem(r, 400, "malformed-request",
                        rule && !one_of(rule, COMPLIANCE_RULES) ? "unknown rule"
                        : sev && !one_of(sev, COMPLIANCE_SEVERITIES) ? "severity must be critical, high, medium, low or info"
                                                            : "subprocessor_id is not an id");
        return;
    }
    int horizon;
    as_of when;
    if (!parse_days(r, "within_days", 30, &horizon) || !as_of_param(r, &when)) return;
    loaded l;
    if (!load_registry(r, &l, &when)) return;
    l.in.horizon_days = horizon;
    cJSON *all = compliance_findings(&l.in);
    cJSON *items = cJSON_CreateArray();
    while (all->child) {
        cJSON *f = cJSON_DetachItemViaPointer(all, all->child);
        const char *fr = json_get_str(f, "rule"), *fs = json_get_str(f, "severity");
        const char *fsp = json_get_str(f, "subprocessor_id");
        if ((rule && (!fr || strcmp(fr, rule) != 0)) || (sev && (!fs || strcmp(fs, sev) != 0)) ||
            (sp && (!fsp || strcmp(fsp, sp) != 0)))
            cJSON_Delete(f);
        else
            cJSON_AddItemToArray(items, f);
    }
    cJSON_Delete(all);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "computed_on", l.today);
    as_of_describe(body, &when);
    cJSON_AddNumberToObject(body, "count", cJSON_GetArraySize(items));
    cJSON_AddItemToObject(body, "items", items);
    respond_json(r, 200, body);
    cJSON_Delete(body);
    loaded_free(&l);
}

static void handle_expiring(req *r)
{
    static const char *const allowed[] = {"within_days", "as_of", NULL};
    if (!req_check_query(r, allowed)) return;
    int days;
    as_of when;
    if (!parse_days(r, "within_days", 90, &days) || !as_of_param(r, &when)) return;
    loaded l;
    if (!load_registry(r, &l, &when)) return;
    cJSON *items = compliance_expiring(&l.in, days);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "computed_on", l.today);
    as_of_describe(body, &when);
    cJSON_AddNumberToObject(body, "within_days", days);
    cJSON_AddItemToObject(body, "items", items);
    respond_json(r, 200, body);
    cJSON_Delete(body);
    loaded_free(&l);
}

int compliance_routes(route *out, int cap)
{
    const route rs[] = {
        {"GET", "/v1/compliance/findings", handle_findings, ROLE_READER, NULL, 0},
        {"GET", "/v1/reports/expiring", handle_expiring, ROLE_READER, NULL, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}
