#define _GNU_SOURCE
/* The public list from memory: the rendered forms of every version (JSON in
 * both languages, CSV, HTML, Atom, versions) in a reference-counted snapshot,
 * and the public endpoints, which never touch the database. */
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

/* ---- the in-memory public snapshot ----------------------------------------- */


static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static snapshot *snap;
static uint64_t snap_gen; /* moves with every swap of snap (under snap_mu) */

static void view_free(list_view *v)
{
    for (int i = 0; i < F_COUNT; i++) free(v->forms[i].body);
    for (int i = 0; i < v->nversions; i++) free(v->versions[i].body);
    free(v->versions);
}

void snapshot_release(snapshot *s)
{
    if (!s) return;
    pthread_mutex_lock(&snap_mu);
    int left = --s->refs;
    pthread_mutex_unlock(&snap_mu);
    if (left > 0) return;
    for (int i = 0; i < s->nviews; i++) view_free(&s->views[i]);
    free(s->views);
    cJSON_Delete(s->services);
    free(s);
}

/* Puts fresh (may be NULL) in place of the current snapshot. */
void snapshot_swap(snapshot *fresh)
{
    pthread_mutex_lock(&snap_mu);
    snapshot *old = snap;
    snap = fresh;
    __atomic_add_fetch(&snap_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&snap_mu);
    snapshot_release(old);
}

snapshot *snapshot_get(void)
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
    json_clean_text(v); /* any stored string, even one from before today's checks */
    char *s = json_dump(v);
    set_form(f, s, strlen(s), number);
}

/* What a version says about its notice: the announcement it replaces and the
 * version its changes are against, and a shortened notice with its reason. */
static void add_notice_members(cJSON *o, const cJSON *pub, const char *lang)
{
    static const char *const plain[] = {"replaces", "changes_against", NULL};
    static const char *const stored[] = {"replaces", "diff_against", NULL};
    for (int i = 0; plain[i]; i++)
        if (cJSON_IsNumber(json_get(pub, stored[i])))
            cJSON_AddNumberToObject(o, plain[i], cJSON_GetNumberValue(json_get(pub, stored[i])));
    if (cJSON_IsTrue(json_get(pub, "override_notice"))) {
        cJSON_AddTrueToObject(o, "override_notice");
        const cJSON *reason = json_get(pub, "override_reason");
        if (reason) cJSON_AddItemToObject(o, "override_reason", localize(reason, lang));
    }
}

static int number_of(const cJSON *p)
{
    return (int)cJSON_GetNumberValue(json_get(p, "number"));
}

/* The status of a version at now; current: the number in effect on this list,
 * or in_effect: the number in effect on the whole list (a version that left a
 * service's list as it was is in effect too). */
static const char *version_status(const cJSON *pubs, const cJSON *p, int current, int in_effect, int64_t now)
{
    if (publication_replaced_by(pubs, p)) return "replaced";
    int n = number_of(p);
    return ts_ms(p, "effective_at") > now ? "upcoming" : n == current || n == in_effect ? "in_effect" : "superseded";
}

/* A version's status, and for a replaced announcement the version that replaced it. */
static void add_status(cJSON *v, const cJSON *pubs, const cJSON *p, int current, int in_effect, int64_t now)
{
    cJSON_AddStringToObject(v, "status", version_status(pubs, p, current, in_effect, now));
    const cJSON *by = publication_replaced_by(pubs, p);
    if (by) cJSON_AddNumberToObject(v, "replaced_by", number_of(by));
}

/* The public JSON of one version (lang NULL: both languages); pub is a
 * publication_view. */
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
    add_notice_members(o, pub, lang);
    if (with_items) {
        cJSON *items = localize(json_get(pub, "items"), lang);
        strip_services(items);
        cJSON_AddItemToObject(o, "items", items);
    }
    return o;
}

static const char *const LANGS[] = {NULL, "de", "en"};

/* A link of a list's JSON: path, and for a service's list its id. */
static void add_link(cJSON *links, const char *name, const char *path, const char *service)
{
    char url[200];
    snprintf(url, sizeof url, "%s%s%s", path, !service ? "" : strchr(path, '?') ? "&service=" : "?service=",
             service ? service : "");
    cJSON_AddStringToObject(links, name, url);
}

/* One list's forms (v->service NULL: the whole list), from all: the
 * publication_view of every publication for that list, oldest first. A
 * service's list shows the versions that change it (and the first, and what
 * replaces one shown): a version that touches only other services leaves it,
 * its ETag and its Last-Modified as they were. Every version stays at
 * versions/{n}. in_effect: the number in effect on the whole list. */
/* A list's Last-Modified: changed_ms, the dates its versions give — unless its
 * forms (but the XLSX) are the ones prev had (then prev's, so
 * If-Modified-Since gives 304),
 * or they changed for a reason no date of its own shows (the catalogue of
 * services on its page, a version's status on the whole list): then the time
 * of this build. floor_s: at a start (no prev), a service's list is dated no
 * earlier than the whole list, as nothing says when its forms last changed. */
static bool same_forms(const list_view *v, const list_view *prev)
{
    for (int i = 0; i < F_COUNT; i++)
        if (i != F_XLSX_DE && i != F_XLSX_EN && strcmp(v->forms[i].etag, prev->forms[i].etag) != 0) return false;
    /* a version new since prev is new to every client: only the ones prev had count */
    if (v->nversions < prev->nversions) return false;
    for (int i = 0; i < prev->nversions; i++)
        if (strcmp(v->versions[i].etag, prev->versions[i].etag) != 0) return false;
    return true;
}

static void set_last_modified(list_view *v, int64_t changed_ms, const list_view *prev, time_t floor_s, int64_t now)
{
    time_t lm = (time_t)((changed_ms ? changed_ms : now) / 1000), now_s = (time_t)(now / 1000);
    if (prev && same_forms(v, prev)) lm = prev->last_modified_s;
    else if (prev && lm <= prev->last_modified_s) lm = now_s > prev->last_modified_s ? now_s : prev->last_modified_s + 1;
    else if (!prev && lm < floor_s) lm = floor_s;
    v->last_modified_s = lm;
    struct tm tm;
    gmtime_r(&lm, &tm);
    strftime(v->last_modified, sizeof v->last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void build_view(list_view *v, const cJSON *all, const cJSON *services, const cJSON *service, int in_effect,
                       int64_t now, const list_view *prev, time_t floor_s)
{
    const char *sid = service ? json_get_str(service, "id") : NULL;
    v->service = sid;
    cJSON *shown = cJSON_CreateArray(); /* references */
    for (const cJSON *p = all->child; p; p = p->next) {
        const cJSON *r = json_get(p, "replaces");
        bool keep = !sid || !json_get(p, "diff_against") || !diff_is_empty(json_get(p, "diff"));
        for (const cJSON *q = shown->child; !keep && cJSON_IsNumber(r) && q; q = q->next)
            keep = number_of(q) == (int)r->valuedouble;
        if (keep) cJSON_AddItemReferenceToArray(shown, (cJSON *)p);
    }
    const cJSON *current = publication_in_effect(shown, now);
    int64_t latest_pub_ms = 0;
    int latest = 0;
    for (const cJSON *p = shown->child; p; p = p->next) {
        int64_t pm = ts_ms(p, "published_at");
        if (pm > latest_pub_ms) latest_pub_ms = pm;
        latest = number_of(p);
    }
    v->current = current ? number_of(current) : 0;
    /* The list changes when a version is published and when one takes effect
     * (set_last_modified: also when its forms change for another reason). */
    int64_t changed_ms = latest_pub_ms;
    if (current && ts_ms(current, "effective_at") > changed_ms) changed_ms = ts_ms(current, "effective_at");

    /* upcoming: announced, not yet in effect, soonest first */
    for (int li = 0; li < 3; li++) {
        const char *lang = LANGS[li];
        cJSON *o = cJSON_CreateObject();
        if (current) {
            cJSON *cv = version_json(current, lang, true);
            cJSON_AddItemToObject(o, "version", cJSON_DetachItemFromObject(cv, "version"));
            cJSON_AddItemToObject(o, "effective_at", cJSON_DetachItemFromObject(cv, "effective_at"));
            cJSON_AddItemToObject(o, "published_at", cJSON_DetachItemFromObject(cv, "published_at"));
            cJSON_AddItemToObject(o, "items", cJSON_DetachItemFromObject(cv, "items"));
            /* a version in effect on shortened notice says so, with the reason */
            if (json_get(cv, "override_notice")) {
                cJSON_AddItemToObject(o, "override_notice", cJSON_DetachItemFromObject(cv, "override_notice"));
                cJSON_AddItemToObject(o, "override_reason", cJSON_DetachItemFromObject(cv, "override_reason"));
            }
            cJSON_Delete(cv);
        } else {
            cJSON_AddNullToObject(o, "version");
            cJSON_AddNullToObject(o, "effective_at");
            cJSON_AddNullToObject(o, "published_at");
            cJSON_AddArrayToObject(o, "items");
        }
        cJSON *up = cJSON_AddArrayToObject(o, "upcoming");
        for (const cJSON *p = shown->child; p; p = p->next)
            if (strcmp(version_status(shown, p, v->current, v->current, now), "upcoming") == 0)
                cJSON_AddItemToArray(up, version_json(p, lang, false));
        /* a service's list names its service and the others (the whole list stays as it was) */
        if (service) {
            cJSON_AddItemToObject(o, "services", localize(services, lang));
            cJSON_AddItemToObject(o, "service", localize(service, lang));
        }
        cJSON *links = cJSON_AddObjectToObject(o, "links");
        add_link(links, "csv", PUBLIC_CSV_PATH, sid);
        add_link(links, "atom", PUBLIC_FEED_PATH, sid);
        add_link(links, "html", PUBLIC_PAGE_PATH, sid);
        add_link(links, "versions", PUBLIC_VERSIONS_PATH, sid);
        set_json_form(&v->forms[li], o, v->current);
        cJSON_Delete(o);
    }
    const cJSON *items = current ? json_get(current, "items") : NULL;
    cJSON *empty = cJSON_CreateArray();
    for (int li = 1; li < 3; li++) {
        strbuf csv = {0};
        render_csv(items ? items : empty, LANGS[li], &csv);
        set_form(&v->forms[F_CSV_DE + li - 1], csv.data ? csv.data : xstrdup(""), csv.len, v->current);
    }
    /* HTML: upcoming soonest first, history newest first */
    cJSON *upcoming = cJSON_CreateArray(), *history = cJSON_CreateArray();
    /* references (to the members), not copies: the renderers read the publications as they are */
    for (const cJSON *p = shown->child; p; p = p->next) {
        if (strcmp(version_status(shown, p, v->current, v->current, now), "upcoming") == 0)
            cJSON_AddItemToArray(upcoming, cJSON_CreateObjectReference(p->child));
        else cJSON_InsertItemInArray(history, 0, cJSON_CreateObjectReference(p->child));
    }
    char source[400];
    snprintf(source, sizeof source, "%s" PUBLIC_PAGE_PATH "%s%s", api_cfg.public_base_url, sid ? "?service=" : "",
             sid ? sid : "");
    for (int li = 1; li < 3; li++) {
        strbuf html = {0}, annex = {0};
        render_html(current, upcoming, history, LANGS[li], services, service, &html);
        set_form(&v->forms[F_HTML_DE + li - 1], html.data, html.len, v->current);
        render_annex(current, LANGS[li], source, service, &annex);
        set_form(&v->forms[F_ANNEX_DE + li - 1], annex.data, annex.len, v->current);
    }
    /* Atom and the versions list: every version shown, newest first */
    cJSON *newest = cJSON_CreateArray();
    cJSON *versions = cJSON_CreateObject();
    cJSON *vitems = cJSON_AddArrayToObject(versions, "items");
    for (const cJSON *p = shown->child; p; p = p->next) {
        cJSON_InsertItemInArray(newest, 0, cJSON_CreateObjectReference(p->child));
        cJSON *vj = version_json(p, NULL, false);
        add_status(vj, all, p, v->current, in_effect, now);
        cJSON_InsertItemInArray(vitems, 0, vj);
    }
    char updated[32];
    format_rfc3339(latest_pub_ms ? latest_pub_ms : now, updated);
    strbuf atom = {0};
    render_atom(newest, api_cfg.public_base_url, updated, service, &atom);
    set_form(&v->forms[F_ATOM], atom.data, atom.len, latest);
    set_json_form(&v->forms[F_VERSIONS], versions, latest);
    /* every version, shown or not */
    for (const cJSON *p = all->child; p; p = p->next) v->nversions = number_of(p);
    v->versions = xcalloc((size_t)v->nversions + 1, sizeof *v->versions);
    for (const cJSON *p = all->child; p; p = p->next) {
        int n = number_of(p);
        if (n < 1 || n > v->nversions) continue;
        cJSON *vj = version_json(p, NULL, true);
        add_status(vj, all, p, v->current, in_effect, now);
        set_json_form(&v->versions[n - 1], vj, n);
        cJSON_Delete(vj);
    }
    set_last_modified(v, changed_ms, prev, floor_s, now);
    /* the spreadsheets are dated by the versions alone (not by this instance's
     * Last-Modified, which may be later): every instance writes the same bytes */
    time_t dated = (time_t)((changed_ms ? changed_ms : now) / 1000);
    for (int li = 1; li < 3; li++) {
        strbuf xlsx = {0};
        if (render_xlsx(items ? items : empty, LANGS[li], dated, &xlsx))
            set_form(&v->forms[F_XLSX_DE + li - 1], xlsx.data, xlsx.len, v->current);
        else
            sb_free(&xlsx); /* served as 503 (logged once per snapshot) */
        if (!v->forms[F_XLSX_DE + li - 1].body) log_msgf(LOG_ERROR, "public list: the XLSX could not be written");
    }
    cJSON_Delete(versions);
    cJSON_Delete(newest);
    cJSON_Delete(upcoming);
    cJSON_Delete(history);
    cJSON_Delete(empty);
    cJSON_Delete(shown);
}

/* The list of prev for the same service (NULL: the whole list), or NULL. */
static const list_view *prev_view(const snapshot *prev, const char *sid)
{
    for (int i = 0; prev && i < prev->nviews; i++) {
        const char *p = prev->views[i].service;
        if ((!p && !sid) || (p && sid && strcmp(p, sid) == 0)) return &prev->views[i];
    }
    return NULL;
}

snapshot *build_snapshot(const cJSON *pubs, int64_t now, const snapshot *prev)
{
    snapshot *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    const cJSON *current = publication_in_effect(pubs, now);
    cJSON *live = cJSON_CreateArray(); /* references: in effect and announced */
    for (const cJSON *p = pubs->child; p; p = p->next) {
        int64_t eff = ts_ms(p, "effective_at");
        bool announced = eff > now && !publication_replaced_by(pubs, p);
        if (announced && (!s->next_change_ms || eff < s->next_change_ms)) s->next_change_ms = eff;
        if (announced || p == current) cJSON_AddItemReferenceToArray(live, (cJSON *)p);
        s->latest = number_of(p);
    }
    s->current = current ? number_of(current) : 0;
    s->services = public_services(live);
    cJSON_Delete(live);
    s->nviews = 1 + cJSON_GetArraySize(s->services);
    s->views = xcalloc((size_t)s->nviews, sizeof *s->views);
    const cJSON *service = NULL;
    for (int i = 0; i < s->nviews; i++) {
        service = i == 0 ? NULL : i == 1 ? s->services->child : service->next;
        const char *sid = service ? json_get_str(service, "id") : NULL;
        cJSON *all = cJSON_CreateArray(); /* each shares its publication's members */
        for (const cJSON *p = pubs->child; p; p = p->next)
            cJSON_AddItemToArray(all, publication_view(p, sid));
        build_view(&s->views[i], all, s->services, service, s->current, now, prev_view(prev, sid),
                   i == 0 ? 0 : s->views[0].last_modified_s);
        cJSON_Delete(all);
    }
    return s;
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
static bool not_modified(req *r, const form *f, const list_view *s)
{
    const char *inm = req_header(r, "If-None-Match");
    if (inm) return strstr(inm, f->etag) != NULL || strcmp(inm, "*") == 0;
    time_t ims = http_date_parse(req_header(r, "If-Modified-Since"));
    return ims != (time_t)-1 && s->last_modified_s <= ims;
}

static void send_form(req *r, const list_view *s, const form *f, const char *ctype, const char *vary)
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

/* The list the query asks for: ?service=ID (a public service of the list in
 * effect or announced), or without it (or empty, as the page's selector
 * sends "all services") the whole list; NULL after answering 404. */
static const list_view *pick_view(req *r, const snapshot *s)
{
    const char *id = req_query(r, "service");
    if (!id || !*id) return &s->views[0];
    for (int i = 1; i < s->nviews; i++)
        if (strcmp(s->views[i].service, id) == 0) return &s->views[i];
    respond_problem(r, 404, "not-found", "no public service with the id given in the query parameter service");
    return NULL;
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

static const char *const SERVICE_ONLY[] = {"service", NULL};

/* The snapshot's list the query asks for, after checking the query; NULL
 * after answering. */
static const list_view *public_view_of(req *r, const char *const *allowed)
{
    if (!req_check_query(r, allowed) || !lang_ok(r)) return NULL;
    snapshot *ss = public_snapshot(r);
    return ss ? pick_view(r, ss) : NULL;
}

static void handle_public_list(req *r)
{
    static const char *const allowed[] = {"format", "lang", "service", NULL};
    const list_view *s = public_view_of(r, allowed);
    if (!s) return;
    const char *format = req_query(r, "format");
    const char *accept = req_header(r, "Accept");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0 && strcmp(format, "xlsx") != 0) {
        respond_problem(r, 400, "malformed-request", "format must be json, csv or xlsx");
        return;
    }
    bool csv = format ? strcmp(format, "csv") == 0 : (accept && strstr(accept, "text/csv") && !strstr(accept, "json"));
    bool xlsx = format ? strcmp(format, "xlsx") == 0 : (accept && strstr(accept, XLSX_MEDIA_TYPE) && !strstr(accept, "json"));
    const char *lang = req_query(r, "lang");
    if (xlsx) {
        const char *l = pick_lang(r, "en");
        const form *f = &s->forms[strcmp(l, "de") == 0 ? F_XLSX_DE : F_XLSX_EN];
        if (!f->body) {
            req_add_header(r, "Retry-After", "60");
            respond_problem(r, 503, "service-unavailable", "the XLSX could not be written (see the service's log)");
            return;
        }
        char disp[160];
        snprintf(disp, sizeof disp, "attachment; filename=\"subprocessors%s%s-v%d-%s.xlsx\"", s->service ? "-" : "",
                 s->service ? s->service : "", s->current, l);
        req_add_header(r, "Content-Disposition", disp);
        send_form(r, s, f, XLSX_MEDIA_TYPE, "Accept, Accept-Language");
    } else if (csv) {
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
    const list_view *s = public_view_of(r, SERVICE_ONLY);
    if (!s) return;
    send_form(r, s, &s->forms[F_VERSIONS], "application/json", NULL);
}

static void handle_public_version(req *r)
{
    char *end;
    long n = strtol(r->param, &end, 10);
    const list_view *s = public_view_of(r, SERVICE_ONLY);
    if (!s) return;
    if (*end || n < 1 || n > s->nversions || !s->versions[n - 1].body)
        respond_problem(r, 404, "not-found", "no such version");
    else
        send_form(r, s, &s->versions[n - 1], "application/json", NULL);
}

static void handle_public_atom(req *r)
{
    const list_view *s = public_view_of(r, SERVICE_ONLY);
    if (!s) return;
    send_form(r, s, &s->forms[F_ATOM], "application/atom+xml; charset=utf-8", NULL);
}

/* The page and the DPA annex: HTML in the asked language (r->route->data: the
 * German form; the English one follows it). */
static void handle_public_html(req *r)
{
    static const char *const allowed[] = {"lang", "service", NULL};
    const list_view *s = public_view_of(r, allowed);
    if (!s) return;
    const char *lang = pick_lang(r, "en");
    int de_form = *(const int *)r->route->data;
    req_add_header(r, "Content-Language", lang);
    /* the page's service selector submits to the page itself */
    req_add_header(r, "Content-Security-Policy",
                   de_form == F_HTML_DE ? "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                          "form-action 'self'; frame-ancestors 'none'"
                                        : "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                          "form-action 'none'; frame-ancestors 'none'");
    send_form(r, s, &s->forms[strcmp(lang, "de") == 0 ? de_form : de_form + 1], "text/html; charset=utf-8",
              "Accept-Language");
}

static const int PAGE_FORMS = F_HTML_DE, ANNEX_FORMS = F_ANNEX_DE;

int public_list_routes(route *out, int cap)
{
    const route rs[] = {
        {"GET", PUBLIC_LIST_PATH, handle_public_list, ROLE_NONE, NULL, 0},
        {"GET", PUBLIC_VERSIONS_PATH, handle_public_versions, ROLE_NONE, NULL, 0},
        {"GET", PUBLIC_VERSIONS_PATH "/{id}", handle_public_version, ROLE_NONE, NULL, 0},
        {"GET", PUBLIC_FEED_PATH, handle_public_atom, ROLE_NONE, NULL, 0},
        {"GET", PUBLIC_PAGE_PATH, handle_public_html, ROLE_NONE, &PAGE_FORMS, 0},
        {"GET", PUBLIC_ANNEX_PATH, handle_public_html, ROLE_NONE, &ANNEX_FORMS, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}

