#define _GNU_SOURCE
/* Publications: immutable, numbered versions of the public subprocessor list
 * (GDPR Art. 28(2): inform before a change takes effect, give the chance to
 * object). POST freezes the public view of every listed subprocessor with its
 * diff to the previous version; a scheduler thread records when a version takes
 * effect (exactly once across instances: the audit claim) and keeps the rendered
 * public forms in memory, so public reads never touch the database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "subreg/api.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"
#include "subreg/resource.h"
#include "subreg/worker.h"

#define PUBLICATIONS "publications"
#define SCHEDULER_ACTOR "subreg-scheduler"


/* ---- objections: a generic resource, nested under its publication --------- */

static const char *const OBJECTION_STATUSES[] = {"open", "withdrawn", "resolved", NULL};

static const field OBJECTION_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "publication_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = PUBLICATIONS},
    {.name = "customer_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = "customers"},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = OBJECTION_STATUSES, .def = "\"open\""},
    {.name = "received_on", .type = FT_DATE},
    {.name = "reason", .type = FT_STRING, .min = 1, .max = 4000},
    {.name = "resolution", .type = FT_STRING, .min = 1, .max = 4000},
    {0},
};

static const filter_def OBJECTION_FILTERS[] = {
    {"status", "status", &(const field){.type = FT_ENUM, .enums = OBJECTION_STATUSES}, NULL},
    {"customer_id", "customer_id", &(const field){.type = FT_REF, .ref = "customers"}, NULL},
    {"publication_id", "publication_id", &(const field){.type = FT_REF, .ref = PUBLICATIONS}, NULL},
    {0},
};

static void objection_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    /* The publication and the customer an objection is about never change. */
    if (before) {
        static const char *const fixed[] = {"publication_id", "customer_id", NULL};
        for (const char *const *f = fixed; *f; f++) {
            const char *a = json_get_str(before, *f), *b = json_get_str(after, *f);
            if (a && b && strcmp(a, b) != 0) {
                char ptr[64];
                snprintf(ptr, sizeof ptr, "/%s", *f);
                verrors_add(errs, ptr, "cannot be changed; record a new objection instead");
            }
        }
    }
    if (errs->count) r->status = 400;
}

const resource RES_OBJECTION = {
    .type = "objection",
    .collection = "objections",
    .path = "/v1/objections",
    .item_path = "/v1/objections/{id}",
    .id_prefix = "ob_",
    .parent_path = "/v1/publications/{id}/objections",
    .parent_field = "publication_id",
    .fields = OBJECTION_FIELDS,
    .filters = OBJECTION_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = objection_check,
};

/* The publication as an audited entity (not a generic CRUD resource). */
static const field PUBLICATION_FIELDS[] = {SERVER_FIELDS, {0}};
const resource RES_PUBLICATION = {
    .type = "publication",
    .collection = PUBLICATIONS,
    .path = "/v1/publications",
    .item_path = "/v1/publications/{id}",
    .fields = PUBLICATION_FIELDS,
    .filters = (const filter_def[]){{0}},
    .read_role = ROLE_READER,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    /* the audit trail keeps the summary and diff, not the frozen items */
    .audit_omit = (const char *const[]){"items", NULL},
};

/* ---- loading publications ------------------------------------------------ */

static int cmp_number(const void *a, const void *b)
{
    double x = cJSON_GetNumberValue(json_get(*(const cJSON *const *)a, "number"));
    double y = cJSON_GetNumberValue(json_get(*(const cJSON *const *)b, "number"));
    return x < y ? -1 : x > y;
}

/* All publications, oldest first. */
static store_status load_publications(cJSON **out)
{
    cJSON *all = NULL;
    store_status st = store_list_all(PUBLICATIONS, &all);
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

static int64_t ts_ms(const cJSON *doc, const char *name)
{
    int64_t ms = 0;
    const char *s = json_get_str(doc, name);
    return s && parse_rfc3339(s, &ms) ? ms : 0;
}

/* ---- the in-memory public snapshot ----------------------------------------- */

typedef struct {
    char *body;
    size_t len;
    char etag[48];
} form;

enum { F_JSON, F_JSON_DE, F_JSON_EN, F_CSV_DE, F_CSV_EN, F_HTML_DE, F_HTML_EN, F_ATOM, F_VERSIONS, F_COUNT };

typedef struct snapshot {
    int refs;
    int current;           /* number in effect, 0 if none */
    int latest;            /* highest number */
    int64_t next_change_ms; /* earliest future effective_at, 0 if none */
    char last_modified[40]; /* HTTP-date */
    time_t last_modified_s;
    form forms[F_COUNT];
    int nversions;
    form *versions;        /* index = number - 1 */
} snapshot;

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static snapshot *snap;
static uint64_t snap_gen; /* moves with every swap of snap (under snap_mu) */

static void snapshot_release(snapshot *s)
{
    if (!s) return;
    pthread_mutex_lock(&snap_mu);
    int left = --s->refs;
    pthread_mutex_unlock(&snap_mu);
    if (left > 0) return;
    for (int i = 0; i < F_COUNT; i++) free(s->forms[i].body);
    for (int i = 0; i < s->nversions; i++) free(s->versions[i].body);
    free(s->versions);
    free(s);
}

/* Puts fresh (may be NULL) in place of the current snapshot. */
static void snapshot_swap(snapshot *fresh)
{
    pthread_mutex_lock(&snap_mu);
    snapshot *old = snap;
    snap = fresh;
    __atomic_add_fetch(&snap_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&snap_mu);
    snapshot_release(old);
}

static snapshot *snapshot_get(void)
{
    pthread_mutex_lock(&snap_mu);
    snapshot *s = snap;
    if (s) s->refs++;
    pthread_mutex_unlock(&snap_mu);
    return s;
}

static void set_form(form *f, char *body, size_t len, int number)
{
    char sha[65];
    sha256_hex(body, len, sha);
    f->body = body;
    f->len = len;
    snprintf(f->etag, sizeof f->etag, "\"%d-%.16s\"", number, sha);
}

static void set_json_form(form *f, cJSON *v, int number)
{
    char *s = json_dump(v);
    set_form(f, s, strlen(s), number);
}

/* The public JSON of one version (lang NULL: both languages). */
static cJSON *version_json(const cJSON *pub, const char *lang, bool with_items)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", cJSON_GetNumberValue(json_get(pub, "number")));
    cJSON_AddStringToObject(o, "effective_at", json_get_str(pub, "effective_at"));
    cJSON_AddStringToObject(o, "published_at", json_get_str(pub, "published_at"));
    const char *dl = json_get_str(pub, "objection_deadline");
    if (dl) cJSON_AddStringToObject(o, "objection_deadline", dl);
    cJSON_AddItemToObject(o, "summary", localize(json_get(pub, "summary"), lang));
    cJSON_AddItemToObject(o, "changes", localize(json_get(pub, "diff"), lang));
    if (with_items) cJSON_AddItemToObject(o, "items", localize(json_get(pub, "items"), lang));
    return o;
}

static const char *const LANGS[] = {NULL, "de", "en"};

static snapshot *build_snapshot(const cJSON *pubs, int64_t now)
{
    snapshot *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    const cJSON *current = NULL;
    int64_t latest_pub_ms = 0;
    for (const cJSON *p = pubs->child; p; p = p->next) {
        int64_t eff = ts_ms(p, "effective_at");
        if (eff <= now) current = p;
        else if (!s->next_change_ms || eff < s->next_change_ms) s->next_change_ms = eff;
        int64_t pm = ts_ms(p, "published_at");
        if (pm > latest_pub_ms) latest_pub_ms = pm;
        s->latest = (int)cJSON_GetNumberValue(json_get(p, "number"));
    }
    s->current = current ? (int)cJSON_GetNumberValue(json_get(current, "number")) : 0;
    /* The list changes when a version is published and when one takes effect. */
    int64_t changed_ms = latest_pub_ms;
    if (current && ts_ms(current, "effective_at") > changed_ms) changed_ms = ts_ms(current, "effective_at");
    time_t lm = (time_t)((changed_ms ? changed_ms : now) / 1000);
    s->last_modified_s = lm;
    struct tm tm;
    gmtime_r(&lm, &tm);
    strftime(s->last_modified, sizeof s->last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);

    /* upcoming: announced, not yet in effect, soonest first */
    for (int li = 0; li < 3; li++) {
        const char *lang = LANGS[li];
        cJSON *o = cJSON_CreateObject();
        if (current) {
            cJSON *v = version_json(current, lang, true);
            cJSON_AddItemToObject(o, "version", cJSON_DetachItemFromObject(v, "version"));
            cJSON_AddItemToObject(o, "effective_at", cJSON_DetachItemFromObject(v, "effective_at"));
            cJSON_AddItemToObject(o, "published_at", cJSON_DetachItemFromObject(v, "published_at"));
            cJSON_AddItemToObject(o, "items", cJSON_DetachItemFromObject(v, "items"));
            cJSON_Delete(v);
        } else {
            cJSON_AddNullToObject(o, "version");
            cJSON_AddNullToObject(o, "effective_at");
            cJSON_AddNullToObject(o, "published_at");
            cJSON_AddArrayToObject(o, "items");
        }
        cJSON *up = cJSON_AddArrayToObject(o, "upcoming");
        for (const cJSON *p = pubs->child; p; p = p->next)
            if (ts_ms(p, "effective_at") > now) cJSON_AddItemToArray(up, version_json(p, lang, false));
        cJSON *links = cJSON_AddObjectToObject(o, "links");
        cJSON_AddStringToObject(links, "csv", "/public/v1/subprocessors?format=csv");
        cJSON_AddStringToObject(links, "atom", "/public/v1/subprocessors/feed.atom");
        cJSON_AddStringToObject(links, "html", "/subprocessors");
        cJSON_AddStringToObject(links, "versions", "/public/v1/subprocessors/versions");
        set_json_form(&s->forms[li], o, s->current);
        cJSON_Delete(o);
    }
    const cJSON *items = current ? json_get(current, "items") : NULL;
    cJSON *empty = cJSON_CreateArray();
    for (int li = 1; li < 3; li++) {
        strbuf csv = {0};
        render_csv(items ? items : empty, LANGS[li], &csv);
        set_form(&s->forms[F_CSV_DE + li - 1], csv.data ? csv.data : xstrdup(""), csv.len, s->current);
    }
    /* HTML: upcoming soonest first, history newest first */
    cJSON *upcoming = cJSON_CreateArray(), *history = cJSON_CreateArray();
    for (const cJSON *p = pubs->child; p; p = p->next) {
        if (ts_ms(p, "effective_at") > now) cJSON_AddItemToArray(upcoming, cJSON_Duplicate(p, 1));
        else cJSON_InsertItemInArray(history, 0, cJSON_Duplicate(p, 1));
    }
    for (int li = 1; li < 3; li++) {
        strbuf html = {0};
        render_html(current, upcoming, history, LANGS[li], &html);
        set_form(&s->forms[F_HTML_DE + li - 1], html.data, html.len, s->current);
    }
    /* Atom and the versions list: every publication, newest first */
    cJSON *newest = cJSON_CreateArray();
    cJSON *versions = cJSON_CreateObject();
    cJSON *vitems = cJSON_AddArrayToObject(versions, "items");
    for (const cJSON *p = pubs->child; p; p = p->next) {
        cJSON_InsertItemInArray(newest, 0, cJSON_Duplicate(p, 1));
        cJSON *v = version_json(p, NULL, false);
        int64_t eff = ts_ms(p, "effective_at");
        cJSON_AddStringToObject(v, "status", eff > now ? "upcoming" : p == current ? "in_effect" : "superseded");
        cJSON_InsertItemInArray(vitems, 0, v);
    }
    char updated[32];
    format_rfc3339(latest_pub_ms ? latest_pub_ms : now, updated);
    strbuf atom = {0};
    render_atom(newest, API.public_base_url, updated, &atom);
    set_form(&s->forms[F_ATOM], atom.data, atom.len, s->latest);
    set_json_form(&s->forms[F_VERSIONS], versions, s->latest);
    s->nversions = s->latest;
    s->versions = xcalloc((size_t)s->nversions + 1, sizeof *s->versions);
    for (const cJSON *p = pubs->child; p; p = p->next) {
        int n = (int)cJSON_GetNumberValue(json_get(p, "number"));
        if (n < 1 || n > s->nversions) continue;
        cJSON *v = version_json(p, NULL, true);
        int64_t eff = ts_ms(p, "effective_at");
        cJSON_AddStringToObject(v, "status", eff > now ? "upcoming" : p == current ? "in_effect" : "superseded");
        set_json_form(&s->versions[n - 1], v, n);
        cJSON_Delete(v);
    }
    cJSON_Delete(versions);
    cJSON_Delete(newest);
    cJSON_Delete(upcoming);
    cJSON_Delete(history);
    cJSON_Delete(empty);
    return s;
}

/* ---- the scheduler thread -------------------------------------------------- */

static worker sched;
static int sched_poll_ms;

/* Records "took effect" once per publication: the audit claim on the version
 * makes it exactly once across instances. */
static void record_effective(cJSON *pub, int64_t now)
{
    const char *id = json_get_str(pub, "id");
    char at[32];
    format_rfc3339(now, at);
    cJSON *after = cJSON_Duplicate(pub, 1);
    cJSON_AddStringToObject(after, "effective_recorded_at", at);
    char *rid = new_id("sched_");
    store_status st = doc_write(&RES_PUBLICATION, &(write_origin){SCHEDULER_ACTOR, rid, now}, "effective", id, pub,
                                after, NULL);
    if (st == ST_OK) log_msgf(LOG_INFO, "publication %s took effect", id);
    else if (st != ST_STALE) log_msgf(LOG_WARN, "publication %s: recording its effect failed (%s)", id, store_status_name(st));
    free(rid);
    cJSON_Delete(after);
}

static void refresh(void)
{
    cJSON *pubs = NULL;
    if (load_publications(&pubs) != ST_OK) return; /* keep serving the last snapshot */
    int64_t now = now_ms();
    for (cJSON *p = pubs->child; p; p = p->next)
        if (ts_ms(p, "effective_at") <= now && !json_get(p, "effective_recorded_at")) record_effective(p, now);
    snapshot *cur = snapshot_get();
    int current = 0, latest = 0;
    for (cJSON *p = pubs->child; p; p = p->next) {
        int n = (int)cJSON_GetNumberValue(json_get(p, "number"));
        if (ts_ms(p, "effective_at") <= now) current = n;
        latest = n;
    }
    if (!cur || cur->current != current || cur->latest != latest) {
        snapshot_swap(build_snapshot(pubs, now));
        log_msgf(LOG_INFO, "public list: version %d in effect, %d published", current, latest);
    }
    snapshot_release(cur);
    cJSON_Delete(pubs);
}

static int sched_round(void *arg)
{
    (void)arg;
    refresh();
    return 0;
}

/* Wake at the poll interval, or earlier when a version takes effect. */
static int64_t sched_wait(void *arg)
{
    (void)arg;
    int64_t wait = sched_poll_ms;
    snapshot *s = snapshot_get();
    if (s && s->next_change_ms) {
        int64_t until = s->next_change_ms - now_ms();
        if (until < wait) wait = until < 1 ? 1 : until;
    }
    snapshot_release(s);
    return wait;
}

void publish_start(int poll_ms)
{
    sched_poll_ms = poll_ms;
    /* Serve the public list from the first request on (if the database answers). */
    refresh();
    sched = (worker){.round = sched_round, .wait_ms = sched_wait, .interval_ms = poll_ms};
    worker_start(&sched);
}

void publish_kick(void)
{
    worker_kick(&sched);
}

void publish_stop(void)
{
    worker_stop(&sched);
    snapshot_swap(NULL);
}

/* ---- admin endpoints --------------------------------------------------------- */

static const field CREATE_FIELDS[] = {
    {.name = "effective_at", .type = FT_DATETIME},
    {.name = "summary", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 2000},
    {.name = "override_notice", .type = FT_BOOL},
    {0},
};

/* Longest notice and objection periods promised to active customers. */
static store_status customer_periods(int *notice, int *objection, bool *any)
{
    cJSON *customers = NULL;
    store_status st = store_list_all("customers", &customers);
    if (st != ST_OK) return st;
    *notice = 0;
    *objection = 0;
    *any = false;
    for (const cJSON *c = customers->child; c; c = c->next) {
        const char *status = json_get_str(c, "status");
        if (status && strcmp(status, "active") != 0) continue;
        *any = true;
        int n = (int)cJSON_GetNumberValue(json_get(c, "notice_days"));
        int o = (int)cJSON_GetNumberValue(json_get(c, "objection_days"));
        if (n > *notice) *notice = n;
        if (o > *objection) *objection = o;
    }
    cJSON_Delete(customers);
    return ST_OK;
}

static void add_objection_counts(cJSON *pub)
{
    const char *states[] = {"open", NULL};
    int64_t total = 0, open = 0;
    bson_t f1 = BSON_INITIALIZER, f2 = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f1, "publication_id", json_get_str(pub, "id"));
    BSON_APPEND_UTF8(&f2, "publication_id", json_get_str(pub, "id"));
    BSON_APPEND_UTF8(&f2, "status", states[0]);
    if (store_count("objections", &f1, &total) == ST_OK && store_count("objections", &f2, &open) == ST_OK) {
        cJSON *o = cJSON_AddObjectToObject(pub, "objections");
        cJSON_AddNumberToObject(o, "total", (double)total);
        cJSON_AddNumberToObject(o, "open", (double)open);
    }
    bson_destroy(&f1);
    bson_destroy(&f2);
}

static void handle_publish(req *r)
{
    cJSON *body = req_json_body(r, "application/json");
    if (!body) return;
    verrors errs;
    verrors_init(&errs);
    cJSON *subs = NULL, *pubs = NULL, *items = NULL, *diff = NULL, *doc = NULL;
    if (!schema_validate(CREATE_FIELDS, body, &errs)) {
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
    if (st == ST_OK) st = load_publications(&pubs);
    int notice = 0, objection = 0;
    bool any_customer = false;
    if (st == ST_OK) st = customer_periods(&notice, &objection, &any_customer);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    const cJSON *prev = cJSON_GetArrayItem(pubs, cJSON_GetArraySize(pubs) - 1);
    items = public_items(subs);
    diff = publication_diff(prev ? json_get(prev, "items") : NULL, items);
    if (prev && diff_is_empty(diff)) {
        respond_problem(r, 409, "conflict", "nothing changed since the last publication");
        goto done;
    }
    /* Art. 28(2): additions and changes are announced before they take effect,
     * by the longest notice period promised to any active customer. Removals
     * need no notice; the first publication announces nothing new. */
    bool needs_notice = prev && (cJSON_GetArraySize(json_get(diff, "added")) > 0 ||
                                 cJSON_GetArraySize(json_get(diff, "changed")) > 0);
    bool override = cJSON_IsTrue(json_get(body, "override_notice"));
    int64_t earliest = now + (int64_t)notice * 86400000;
    if (needs_notice && eff < earliest && !override) {
        char when[32], d[320];
        format_rfc3339(earliest, when);
        snprintf(d, sizeof d,
                 "customers were promised %d days' notice: effective_at must be %s or later "
                 "(or set override_notice, which is audited)",
                 notice, when);
        respond_problem(r, 422, "unprocessable-entity", d);
        goto done;
    }
    int number = prev ? (int)cJSON_GetNumberValue(json_get(prev, "number")) + 1 : 1;
    char id[16], at[32], eff_str[32], deadline[32];
    snprintf(id, sizeof id, "%d", number);
    format_rfc3339(now, at);
    format_rfc3339(eff, eff_str);
    /* Objections count before the change takes effect: the period a customer was
     * promised, but never past effective_at. */
    int64_t until = now + (int64_t)(any_customer ? objection : 30) * 86400000;
    if (eff > now && eff < until) until = eff;
    format_rfc3339(until, deadline);
    doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "number", number);
    cJSON_AddStringToObject(doc, "published_at", at);
    cJSON_AddStringToObject(doc, "published_by", r->who.sub);
    cJSON_AddStringToObject(doc, "effective_at", eff_str);
    cJSON_AddStringToObject(doc, "objection_deadline", deadline);
    cJSON_AddNumberToObject(doc, "notice_days_required", needs_notice ? notice : 0);
    cJSON_AddBoolToObject(doc, "override_notice", needs_notice && eff < earliest && override);
    cJSON_AddItemToObject(doc, "summary", cJSON_Duplicate(json_get(body, "summary"), 1));
    cJSON_AddItemToObject(doc, "diff", cJSON_Duplicate(diff, 1));
    cJSON_AddItemToObject(doc, "items", cJSON_Duplicate(items, 1));
    st = doc_write(&RES_PUBLICATION, &(write_origin){r->who.sub, r->request_id, now}, NULL, id, NULL, doc, NULL);
    if (st == ST_DUPLICATE) {
        respond_problem(r, 409, "conflict", "another publication was created at the same moment; retry");
        goto done;
    }
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    publish_kick();
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
    cJSON_Delete(pubs);
    cJSON_Delete(subs);
    cJSON_Delete(body);
}

static void handle_publications(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *pubs = NULL;
    store_status st = load_publications(&pubs);
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
    store_status st = store_get(PUBLICATIONS, r->param, &p);
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

/* ---- public endpoints (no token, no database) ------------------------------ */

static const char *pick_lang(req *r, const char *def)
{
    const char *q = req_query(r, "lang");
    if (q) return q;
    const char *al = req_header(r, "Accept-Language");
    if (al) {
        /* The first language the client lists that we have wins. */
        for (const char *p = al; *p;) {
            while (*p == ' ' || *p == ',') p++;
            if (!strncasecmp(p, "de", 2) && (p[2] == '\0' || p[2] == '-' || p[2] == ';' || p[2] == ','))
                return "de";
            if (!strncasecmp(p, "en", 2) && (p[2] == '\0' || p[2] == '-' || p[2] == ';' || p[2] == ','))
                return "en";
            p += strcspn(p, ",");
        }
    }
    return def;
}

static time_t http_date_parse(const char *s)
{
    struct tm tm = {0};
    const char *end = s ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
    return end ? timegm(&tm) : (time_t)-1;
}

/* RFC 9110 13.1.3: If-None-Match wins; otherwise not modified when the list
 * has not changed after the date the client gives. */
static bool not_modified(req *r, const form *f, const snapshot *s)
{
    const char *inm = req_header(r, "If-None-Match");
    if (inm) return strstr(inm, f->etag) != NULL || strcmp(inm, "*") == 0;
    time_t ims = http_date_parse(req_header(r, "If-Modified-Since"));
    return ims != (time_t)-1 && s->last_modified_s <= ims;
}

static void send_form(req *r, const snapshot *s, const form *f, const char *ctype, const char *vary)
{
    req_add_header(r, "ETag", f->etag);
    req_add_header(r, "Last-Modified", s->last_modified);
    req_add_header(r, "Cache-Control", "public, max-age=60");
    if (vary) req_add_header(r, "Vary", vary);
    if (not_modified(r, f, s)) respond_empty(r, 304);
    else respond(r, 200, ctype, f->body, f->len);
}

/* The public handlers' snapshot: each worker thread keeps a reference to the
 * one it last used and takes a new one only when a refresh swapped it
 * (snap_gen moved) — no lock on the hot path. The reference is valid until the
 * thread's next call; publish_thread_exit drops it. */
static __thread snapshot *held;
static __thread uint64_t held_gen;

static snapshot *snapshot_held(void)
{
    /* Read before taking the snapshot: a swap in between only makes the next
     * call take the newer one. */
    uint64_t g = __atomic_load_n(&snap_gen, __ATOMIC_ACQUIRE);
    if (held && held_gen == g) return held;
    snapshot_release(held);
    held = snapshot_get();
    held_gen = g;
    return held;
}

void publish_thread_exit(void)
{
    snapshot_release(held);
    held = NULL;
}

static snapshot *public_snapshot(req *r)
{
    snapshot *s = snapshot_held();
    if (!s) {
        req_add_header(r, "Retry-After", "2");
        respond_problem(r, 503, "service-unavailable", "the public list is being loaded");
    }
    return s;
}

static bool lang_ok(req *r)
{
    const char *l = req_query(r, "lang");
    if (l && strcmp(l, "de") != 0 && strcmp(l, "en") != 0) {
        respond_problem(r, 400, "malformed-request", "lang must be de or en");
        return false;
    }
    return true;
}

static void handle_public_list(req *r)
{
    static const char *const allowed[] = {"format", "lang", NULL};
    if (!req_check_query(r, allowed) || !lang_ok(r)) return;
    const char *format = req_query(r, "format");
    const char *accept = req_header(r, "Accept");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        respond_problem(r, 400, "malformed-request", "format must be json or csv");
        return;
    }
    bool csv = format ? strcmp(format, "csv") == 0 : (accept && strstr(accept, "text/csv") && !strstr(accept, "json"));
    snapshot *s = public_snapshot(r);
    if (!s) return;
    const char *lang = req_query(r, "lang");
    if (csv) {
        const char *l = pick_lang(r, "en");
        send_form(r, s, &s->forms[strcmp(l, "de") == 0 ? F_CSV_DE : F_CSV_EN], "text/csv; charset=utf-8; header=present",
                  "Accept, Accept-Language");
    } else {
        int which = !lang ? F_JSON : strcmp(lang, "de") == 0 ? F_JSON_DE : F_JSON_EN;
        send_form(r, s, &s->forms[which], "application/json", "Accept");
    }
}

static void handle_public_versions(req *r)
{
    if (!req_check_query(r, NULL)) return;
    snapshot *s = public_snapshot(r);
    if (!s) return;
    send_form(r, s, &s->forms[F_VERSIONS], "application/json", NULL);
}

static void handle_public_version(req *r)
{
    if (!req_check_query(r, NULL)) return;
    char *end;
    long n = strtol(r->param, &end, 10);
    snapshot *s = public_snapshot(r);
    if (!s) return;
    if (*end || n < 1 || n > s->nversions || !s->versions[n - 1].body)
        respond_problem(r, 404, "not-found", "no such version");
    else
        send_form(r, s, &s->versions[n - 1], "application/json", NULL);
}

static void handle_public_atom(req *r)
{
    if (!req_check_query(r, NULL)) return;
    snapshot *s = public_snapshot(r);
    if (!s) return;
    send_form(r, s, &s->forms[F_ATOM], "application/atom+xml; charset=utf-8", NULL);
}

static void handle_public_html(req *r)
{
    static const char *const allowed[] = {"lang", NULL};
    if (!req_check_query(r, allowed) || !lang_ok(r)) return;
    snapshot *s = public_snapshot(r);
    if (!s) return;
    const char *lang = pick_lang(r, "en");
    req_add_header(r, "Content-Language", lang);
    req_add_header(r, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    send_form(r, s, &s->forms[strcmp(lang, "de") == 0 ? F_HTML_DE : F_HTML_EN], "text/html; charset=utf-8",
              "Accept-Language");
}

int publication_routes(route *out, int cap)
{
    const route rs[] = {
        {"POST", "/v1/publications", handle_publish, RES_PUBLICATION.write_role, NULL, 0},
        {"GET", "/v1/publications", handle_publications, RES_PUBLICATION.read_role, NULL, 0},
        {"GET", "/v1/publications/{id}", handle_publication, RES_PUBLICATION.read_role, NULL, 0},
        {"GET", "/public/v1/subprocessors", handle_public_list, ROLE_NONE, NULL, 0},
        {"GET", "/public/v1/subprocessors/versions", handle_public_versions, ROLE_NONE, NULL, 0},
        {"GET", "/public/v1/subprocessors/versions/{id}", handle_public_version, ROLE_NONE, NULL, 0},
        {"GET", "/public/v1/subprocessors/feed.atom", handle_public_atom, ROLE_NONE, NULL, 0},
        {"GET", "/subprocessors", handle_public_html, ROLE_NONE, NULL, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}
