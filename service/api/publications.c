#define _GNU_SOURCE
/* Publications: immutable, numbered versions of the public subprocessor list
 * (GDPR Art. 28(2): inform before a change takes effect, give the chance to
 * object). POST freezes the public view of every listed subprocessor with its
 * diff to the previous version; a scheduler thread records when a version takes
 * effect (exactly once across instances: the audit claim) and keeps the rendered
 * public forms in memory, so public reads never touch the database. This file:
 * loading publications and POST/GET /v1/publications; scheduler.c the thread;
 * public_list.c the snapshot and the public endpoints (publish_internal.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "publish_internal.h"
#include "subreg/api.h"
#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"
#include "subreg/resource.h"
#include "subreg/worker.h"

/* ---- loading publications ------------------------------------------------ */

static int cmp_number(const void *a, const void *b)
{
    double x = cJSON_GetNumberValue(json_get(*(const cJSON *const *)a, "number"));
    double y = cJSON_GetNumberValue(json_get(*(const cJSON *const *)b, "number"));
    return x < y ? -1 : x > y;
}

/* All publications, oldest first; without their frozen items unless with_items
 * (the items of every version: what grows with the registry times its history). */
store_status load_publications(cJSON **out, bool with_items)
{
    cJSON *all = NULL;
    store_status st = store_list_all_omit(COLL_PUBLICATIONS, with_items ? NULL : PUBLICATION_FROZEN, &all);
    if (st != ST_OK) return st;
    int n = cJSON_GetArraySize(all);
    cJSON **v = xcalloc((size_t)n + 1, sizeof *v);
    int k = 0;
    while (all->child) v[k++] = cJSON_DetachItemViaPointer(all, all->child);
    qsort(v, (size_t)k, sizeof *v, cmp_number);
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(all, v[i]);
    free(v);
    *out = all;
    return ST_OK;
}

/* The publications still to be seen on the public list, with their frozen
 * items: the one in effect at now and the announced ones (replaced announcements
 * left out), oldest first. pubs: all publications without items
 * (load_publications). Besides the snapshot, the one reader of items. */
store_status load_live_publications(const cJSON *pubs, int64_t now, cJSON **out)
{
    const cJSON *current = publication_in_effect(pubs, now);
    *out = cJSON_CreateArray();
    for (const cJSON *p = pubs ? pubs->child : NULL; p; p = p->next) {
        if (p != current && (ts_ms(p, "effective_at") <= now || publication_replaced_by(pubs, p))) continue;
        cJSON *full = NULL;
        store_status st = store_get(COLL_PUBLICATIONS, json_get_str(p, "id"), &full);
        if (st != ST_OK) {
            cJSON_Delete(*out);
            *out = NULL;
            return st;
        }
        cJSON_AddItemToArray(*out, full);
    }
    return ST_OK;
}

bool refuse_if_published(req *r, const char *subprocessor_id)
{
    cJSON *pubs = NULL, *live = NULL;
    int64_t now = now_ms();
    store_status st = load_publications(&pubs, false);
    if (st == ST_OK) st = load_live_publications(pubs, now, &live);
    strbuf where = {0};
    for (const cJSON *p = live ? live->child : NULL; p; p = p->next) {
        json_index ix;
        json_index_build(&ix, json_get(p, "items"), "id");
        if (json_index_find(&ix, subprocessor_id)) {
            bool upcoming = ts_ms(p, "effective_at") > now;
            sb_printf(&where, "%spublication %d (%s", where.len ? ", " : "",
                      (int)cJSON_GetNumberValue(json_get(p, "number")), upcoming ? "announced for " : "in effect");
            if (upcoming) sb_puts(&where, json_get_str(p, "effective_at"));
            sb_puts(&where, ")");
        }
        json_index_free(&ix);
    }
    if (st != ST_OK) respond_store_error(r, st);
    else if (where.len) {
        strbuf d = {0};
        sb_printf(&d, "the subprocessor is on the public list: %s; retire it and publish a version without it first",
                  where.data);
        respond_problem(r, 409, "conflict", d.data);
        sb_free(&d);
    }
    bool refused = st != ST_OK || where.len;
    sb_free(&where);
    cJSON_Delete(live);
    cJSON_Delete(pubs);
    return refused;
}

bool objection_check_services(req *r, const cJSON *before, const cJSON *objection)
{
    const cJSON *services = json_get(objection, "services");
    if (!cJSON_IsArray(services)) return true;
    const cJSON *had = before ? json_get(before, "services") : NULL;
    if (had && cJSON_Compare(had, services, 1)) return true;
    cJSON *pub = NULL, *customer = NULL;
    store_status st = store_get_omit(COLL_PUBLICATIONS, json_get_str(objection, "publication_id"), PUBLICATION_FROZEN, &pub);
    if (st == ST_OK) st = store_get(COLL_CUSTOMERS, json_get_str(objection, "customer_id"), &customer);
    verrors errs;
    verrors_init(&errs);
    int i = 0;
    /* the references themselves were checked before (422 for an unknown one) */
    for (const cJSON *s = st == ST_OK ? services->child : NULL; s; s = s->next, i++) {
        char ptr[32];
        snprintf(ptr, sizeof ptr, "/services/%d", i);
        const cJSON *touched = json_get(pub, "services_affected"), *bought = json_get(customer, "services");
        if (cJSON_IsArray(bought) && !json_array_has_string(bought, s->valuestring))
            verrors_add(&errs, ptr, "the customer does not buy this service");
        else if (cJSON_IsArray(touched) && !json_array_has_string(touched, s->valuestring))
            verrors_add(&errs, ptr, "the publication does not change this service's list");
    }
    bool ok = st != ST_OK || errs.count == 0;
    if (st != ST_OK && st != ST_NOT_FOUND) {
        respond_store_error(r, st);
        ok = false;
    } else if (!ok) {
        respond_errors(r, 422, "unprocessable-entity", "an objection is for services the customer buys and the publication changes", &errs);
    }
    verrors_free(&errs);
    cJSON_Delete(pub);
    cJSON_Delete(customer);
    return ok;
}

int64_t ts_ms(const cJSON *doc, const char *name)
{
    int64_t ms = 0;
    const char *s = json_get_str(doc, name);
    return s && parse_rfc3339(s, &ms) ? ms : 0;
}

/* ---- admin endpoints --------------------------------------------------------- */

static const field CREATE_FIELDS[] = {
    {.name = "effective_at", .type = FT_DATETIME},
    {.name = "summary", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 2000},
    {.name = "override_notice", .type = FT_BOOL},
    {.name = "override_reason", .type = FT_LOCALIZED, .max = 2000},
    {0},
};

static void add_objection_counts(cJSON *pub)
{
    const char *states[] = {"open", NULL};
    int64_t total = 0, open = 0;
    bson_t f1 = BSON_INITIALIZER, f2 = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f1, "publication_id", json_get_str(pub, "id"));
    BSON_APPEND_UTF8(&f2, "publication_id", json_get_str(pub, "id"));
    BSON_APPEND_UTF8(&f2, "status", states[0]);
    if (store_count(COLL_OBJECTIONS, &f1, &total) == ST_OK && store_count(COLL_OBJECTIONS, &f2, &open) == ST_OK) {
        cJSON *o = cJSON_AddObjectToObject(pub, "objections");
        cJSON_AddNumberToObject(o, "total", (double)total);
        cJSON_AddNumberToObject(o, "open", (double)open);
    }
    bson_destroy(&f1);
    bson_destroy(&f2);
}

/* The publication the new one is compared with for "nothing changed": the
 * latest, which is in live (the one in effect or the announced one). */
static const cJSON *latest_of(const cJSON *live)
{
    const cJSON *last = NULL;
    for (const cJSON *p = live ? live->child : NULL; p; p = p->next) last = p;
    return last;
}

static void handle_publish(req *r)
{
    static const char *const allowed[] = {"dry_run", NULL};
    if (!req_check_query(r, allowed)) return;
    /* a preview: what would be published, whom it concerns, the notice it owes */
    bool dry_run;
    if (!req_query_flag(r, "dry_run", &dry_run)) return;
    cJSON *body = req_json_body(r, "application/json");
    if (!body) return;
    verrors errs;
    verrors_init(&errs);
    cJSON *subs = NULL, *pubs = NULL, *live = NULL, *items = NULL, *diff = NULL, *doc = NULL;
    cJSON *customers = NULL, *stored_services = NULL, *services = NULL, *changes = NULL, *affected = NULL;
    notice_terms terms = {0};
    if (!schema_validate(CREATE_FIELDS, body, &errs)) {
        respond_validation(r, &errs);
        goto done;
    }
    bool override = cJSON_IsTrue(json_get(body, "override_notice"));
    if (override && !json_get(body, "override_reason")) {
        /* a shortened notice is shown to the customers with its reason */
        verrors_add(&errs, "/override_reason", "required when override_notice is true");
        respond_validation(r, &errs);
        goto done;
    }
    int64_t now = now_ms(), eff = now;
    const char *eff_s = json_get_str(body, "effective_at");
    if (eff_s) {
        parse_rfc3339(eff_s, &eff);
        if (eff < now - 60000) {
            respond_problem(r, 422, "unprocessable-entity", "effective_at lies in the past");
            goto done;
        }
        if (eff < now) eff = now;
    }
    store_status st = store_list_all(RES_SUBPROCESSOR.collection, &subs);
    if (st == ST_OK) st = load_publications(&pubs, false);
    if (st == ST_OK) st = load_live_publications(pubs, now, &live);
    if (st == ST_OK) st = store_list_all(COLL_CUSTOMERS, &customers);
    if (st == ST_OK) st = store_list_all(COLL_SERVICES, &stored_services);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    /* The version in effect is what customers have: the changes are against it,
     * so replacing an announcement shows them everything that changes. */
    const cJSON *base = publication_in_effect(live, now), *latest = latest_of(live);
    const cJSON *last = cJSON_GetArrayItem(pubs, cJSON_GetArraySize(pubs) - 1);
    services = service_catalogue(stored_services);
    items = public_items(subs);
    assign_services(items, subs, services);
    /* a change of which services a subprocessor serves, or of the catalogue, is one too */
    cJSON *since_latest = publication_diff(latest ? json_get(latest, "items") : NULL, items);
    const cJSON *latest_catalogue = json_get(latest, "services");
    bool same_catalogue = cJSON_GetArraySize(services) == 0 ? !cJSON_GetArraySize(latest_catalogue)
                                                             : latest_catalogue && cJSON_Compare(latest_catalogue, services, 1);
    bool unchanged = last && diff_is_empty(since_latest) && same_catalogue;
    cJSON_Delete(since_latest);
    if (unchanged) {
        respond_problem(r, 409, "conflict", "nothing changed since the last publication");
        goto done;
    }
    const cJSON *base_items = base ? json_get(base, "items") : NULL;
    /* the whole list's changes leave out which services a subprocessor serves
     * (each service's own changes say that): its readers see what they saw */
    diff = service_diff(base_items, items, NULL);
    if (cJSON_GetArraySize(services) > 0) changes = service_changes(base_items, items, services);
    /* Art. 28(2): additions and changes are announced before they take effect,
     * by the longest notice period promised to a customer who sees them (in
     * the services it buys). Removals need no notice; nor does the first
     * version in effect. */
    affected = affected_customers(customers, diff, changes, &terms);
    bool needs_notice = base && terms.needs_notice;
    int notice = terms.notice_days;
    int64_t earliest = now + (int64_t)notice * MS_PER_DAY;
    /* a preview takes the earliest time the notice allows, and says so */
    if (dry_run && needs_notice && eff < earliest && !override) eff = earliest;
    if (needs_notice && eff < earliest && !override) {
        char when[32], d[320];
        format_rfc3339(earliest, when);
        snprintf(d, sizeof d,
                 "customers were promised %d days' notice: effective_at must be %s or later "
                 "(or set override_notice with override_reason, which are audited and shown on the public list)",
                 notice, when);
        respond_problem(r, 422, "unprocessable-entity", d);
        goto done;
    }
    bool shortened = needs_notice && eff < earliest && override;
    int number = last ? (int)cJSON_GetNumberValue(json_get(last, "number")) + 1 : 1;
    char id[16], at[32], eff_str[32], deadline[32];
    snprintf(id, sizeof id, "%d", number);
    format_rfc3339(now, at);
    format_rfc3339(eff, eff_str);
    /* Objections count before the change takes effect: the period a customer was
     * promised, but never past effective_at. */
    int64_t until = now + (int64_t)(terms.any ? terms.objection_days : 30) * MS_PER_DAY;
    if (eff > now && eff < until) until = eff;
    format_rfc3339(until, deadline);
    doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "number", number);
    cJSON_AddStringToObject(doc, "published_at", at);
    cJSON_AddStringToObject(doc, "published_by", r->who.sub);
    cJSON_AddStringToObject(doc, "effective_at", eff_str);
    cJSON_AddStringToObject(doc, "objection_deadline", deadline);
    cJSON_AddNumberToObject(doc, "notice_days_required", needs_notice ? notice : 0);
    cJSON_AddBoolToObject(doc, "override_notice", shortened);
    if (shortened) cJSON_AddItemToObject(doc, "override_reason", cJSON_Duplicate(json_get(body, "override_reason"), 1));
    /* the announcement still waiting is replaced: it never takes effect */
    if (latest && latest != base) cJSON_AddNumberToObject(doc, "replaces", cJSON_GetNumberValue(json_get(latest, "number")));
    if (base) cJSON_AddNumberToObject(doc, "diff_against", cJSON_GetNumberValue(json_get(base, "number")));
    cJSON_AddItemToObject(doc, "summary", cJSON_Duplicate(json_get(body, "summary"), 1));
    cJSON_AddItemToObject(doc, "diff", cJSON_Duplicate(diff, 1));
    /* each service's view of the version, and whom it concerns (moved into doc) */
    if (changes) {
        cJSON *touched = cJSON_CreateArray();
        for (const cJSON *c = changes->child; c; c = c->next)
            if (!diff_is_empty(c)) cJSON_AddItemToArray(touched, cJSON_CreateString(c->string));
        cJSON_AddItemToObject(doc, "services", services);
        cJSON_AddItemToObject(doc, "services_affected", touched);
        cJSON_AddItemToObject(doc, "service_changes", changes);
        services = changes = NULL;
    }
    cJSON_AddItemToObject(doc, "customers_affected", affected);
    cJSON_AddItemToObject(doc, "customers_owed_notice", terms.owed);
    terms.owed = NULL;
    /* those told of the replaced announcement whom this one does not concern:
     * they learn that what they were told will not happen */
    if (latest && latest != base) {
        cJSON *withdrawn = cJSON_AddArrayToObject(doc, "customers_withdrawn");
        const cJSON *told = json_get(latest, "customers_affected");
        for (const cJSON *c = cJSON_IsArray(told) ? told->child : NULL; c; c = c->next)
            if (cJSON_IsString(c) && !json_array_has_string(affected, c->valuestring))
                cJSON_AddItemToArray(withdrawn, cJSON_CreateString(c->valuestring));
    }
    affected = NULL; /* doc's */
    cJSON_AddItemToObject(doc, "items", items);
    items = NULL;
    if (dry_run) {
        char first[32];
        format_rfc3339(needs_notice && !shortened ? earliest : now, first);
        cJSON_AddStringToObject(doc, "earliest_effective_at", first);
        cJSON_AddStringToObject(doc, "id", id);
        cJSON_AddTrueToObject(doc, "dry_run");
        respond_json(r, 200, doc);
        goto done;
    }
    st = doc_write(&RES_PUBLICATION, &(write_origin){r->who.sub, r->request_id, now}, NULL, id, NULL, doc, NULL);
    if (st == ST_DUPLICATE) {
        respond_problem(r, 409, "conflict", "another publication was created at the same moment; retry");
        goto done;
    }
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/publications/%d", number);
    req_add_header(r, "Location", loc);
    req_add_etag(r, 1);
    add_objection_counts(doc);
    respond_json(r, 201, doc);
done:
    verrors_free(&errs);
    cJSON_Delete(doc);
    cJSON_Delete(diff);
    cJSON_Delete(items);
    cJSON_Delete(affected);
    cJSON_Delete(terms.owed);
    cJSON_Delete(changes);
    cJSON_Delete(services);
    cJSON_Delete(stored_services);
    cJSON_Delete(customers);
    cJSON_Delete(live);
    cJSON_Delete(pubs);
    cJSON_Delete(subs);
    cJSON_Delete(body);
}

static void handle_publications(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *pubs = NULL;
    store_status st = load_publications(&pubs, false);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(out, "items");
    while (pubs->child) {
        cJSON *p = doc_public(cJSON_DetachItemViaPointer(pubs, pubs->child));
        cJSON_DeleteItemFromObject(p, "items");
        add_objection_counts(p);
        cJSON_InsertItemInArray(items, 0, p);
    }
    respond_json(r, 200, out);
    cJSON_Delete(out);
    cJSON_Delete(pubs);
}

static void handle_publication(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *p = NULL;
    store_status st = store_get(COLL_PUBLICATIONS, r->param, &p);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    doc_public(p);
    add_objection_counts(p);
    req_add_etag(r, (int64_t)cJSON_GetNumberValue(json_get(p, "version")));
    respond_json(r, 200, p);
    cJSON_Delete(p);
}

int publication_routes(route *out, int cap)
{
    const route rs[] = {
        {"POST", "/v1/publications", handle_publish, RES_PUBLICATION.write_role, NULL, 0},
        {"GET", "/v1/publications", handle_publications, RES_PUBLICATION.read_role, NULL, 0},
        {"GET", "/v1/publications/{id}", handle_publication, RES_PUBLICATION.read_role, NULL, 0},
    };
    int n = add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
    return n + public_list_routes(out + n, cap - n);
}

