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

void snapshot_release(snapshot *s)
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

/* The status of a version at now. */
static const char *version_status(const cJSON *pubs, const cJSON *p, const cJSON *current, int64_t now)
{
    if (publication_replaced_by(pubs, p)) return "replaced";
    return ts_ms(p, "effective_at") > now ? "upcoming" : p == current ? "in_effect" : "superseded";
}

/* A version's status, and for a replaced announcement the version that replaced it. */
static void add_status(cJSON *v, const cJSON *pubs, const cJSON *p, const cJSON *current, int64_t now)
{
    cJSON_AddStringToObject(v, "status", version_status(pubs, p, current, now));
    const cJSON *by = publication_replaced_by(pubs, p);
    if (by) cJSON_AddNumberToObject(v, "replaced_by", cJSON_GetNumberValue(json_get(by, "number")));
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
    add_notice_members(o, pub, lang);
    if (with_items) cJSON_AddItemToObject(o, "items", localize(json_get(pub, "items"), lang));
    return o;
}

static const char *const LANGS[] = {NULL, "de", "en"};

snapshot *build_snapshot(const cJSON *pubs, int64_t now)
{
    snapshot *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    const cJSON *current = publication_in_effect(pubs, now);
    int64_t latest_pub_ms = 0;
    for (const cJSON *p = pubs->child; p; p = p->next) {
        int64_t eff = ts_ms(p, "effective_at");
        bool announced = eff > now && !publication_replaced_by(pubs, p);
        if (announced && (!s->next_change_ms || eff < s->next_change_ms)) s->next_change_ms = eff;
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
            /* a version in effect on shortened notice says so, with the reason */
            if (json_get(v, "override_notice")) {
                cJSON_AddItemToObject(o, "override_notice", cJSON_DetachItemFromObject(v, "override_notice"));
                cJSON_AddItemToObject(o, "override_reason", cJSON_DetachItemFromObject(v, "override_reason"));
            }
            cJSON_Delete(v);
        } else {
            cJSON_AddNullToObject(o, "version");
            cJSON_AddNullToObject(o, "effective_at");
            cJSON_AddNullToObject(o, "published_at");
            cJSON_AddArrayToObject(o, "items");
        }
        cJSON *up = cJSON_AddArrayToObject(o, "upcoming");
        for (const cJSON *p = pubs->child; p; p = p->next)
            if (strcmp(version_status(pubs, p, current, now), "upcoming") == 0)
                cJSON_AddItemToArray(up, version_json(p, lang, false));
        cJSON *links = cJSON_AddObjectToObject(o, "links");
        cJSON_AddStringToObject(links, "csv", PUBLIC_CSV_PATH);
        cJSON_AddStringToObject(links, "atom", PUBLIC_FEED_PATH);
        cJSON_AddStringToObject(links, "html", PUBLIC_PAGE_PATH);
        cJSON_AddStringToObject(links, "versions", PUBLIC_VERSIONS_PATH);
        set_json_form(&s->forms[li], o, s->current);
        cJSON_Delete(o);
    }
    const cJSON *items = current ? json_get(current, "items") : NULL;
    cJSON *empty = cJSON_CreateArray();
    for (int li = 1; li < 3; li++) {
        strbuf csv = {0};
        render_csv(items ? items : empty, LANGS[li], &csv);
        set_form(&s->forms[F_CSV_DE + li - 1], csv.data ? csv.data : xstrdup(""), csv.len, s->current);
        strbuf xlsx = {0};
        if (render_xlsx(items ? items : empty, LANGS[li], s->last_modified_s, &xlsx))
            set_form(&s->forms[F_XLSX_DE + li - 1], xlsx.data, xlsx.len, s->current);
        else
            sb_free(&xlsx); /* served as 503 (logged once per snapshot) */
        if (!s->forms[F_XLSX_DE + li - 1].body) log_msgf(LOG_ERROR, "public list: the XLSX could not be written");
    }
    /* HTML: upcoming soonest first, history newest first */
    cJSON *upcoming = cJSON_CreateArray(), *history = cJSON_CreateArray();
    /* references (to the members), not copies: the renderers read the publications as they are */
    for (const cJSON *p = pubs->child; p; p = p->next) {
        if (strcmp(version_status(pubs, p, current, now), "upcoming") == 0)
            cJSON_AddItemToArray(upcoming, cJSON_CreateObjectReference(p->child));
        else cJSON_InsertItemInArray(history, 0, cJSON_CreateObjectReference(p->child));
    }
    char source[400];
    snprintf(source, sizeof source, "%s" PUBLIC_PAGE_PATH, api_cfg.public_base_url);
    for (int li = 1; li < 3; li++) {
        strbuf html = {0}, annex = {0};
        render_html(current, upcoming, history, LANGS[li], &html);
        set_form(&s->forms[F_HTML_DE + li - 1], html.data, html.len, s->current);
        render_annex(current, LANGS[li], source, &annex);
        set_form(&s->forms[F_ANNEX_DE + li - 1], annex.data, annex.len, s->current);
    }
    /* Atom and the versions list: every publication, newest first */
    cJSON *newest = cJSON_CreateArray();
    cJSON *versions = cJSON_CreateObject();
    cJSON *vitems = cJSON_AddArrayToObject(versions, "items");
    for (const cJSON *p = pubs->child; p; p = p->next) {
        cJSON_InsertItemInArray(newest, 0, cJSON_CreateObjectReference(p->child));
        cJSON *v = version_json(p, NULL, false);
        add_status(v, pubs, p, current, now);
        cJSON_InsertItemInArray(vitems, 0, v);
    }
    char updated[32];
    format_rfc3339(latest_pub_ms ? latest_pub_ms : now, updated);
    strbuf atom = {0};
    render_atom(newest, api_cfg.public_base_url, updated, &atom);
    set_form(&s->forms[F_ATOM], atom.data, atom.len, s->latest);
    set_json_form(&s->forms[F_VERSIONS], versions, s->latest);
    s->nversions = s->latest;
    s->versions = xcalloc((size_t)s->nversions + 1, sizeof *s->versions);
    for (const cJSON *p = pubs->child; p; p = p->next) {
        int n = (int)cJSON_GetNumberValue(json_get(p, "number"));
        if (n < 1 || n > s->nversions) continue;
        cJSON *v = version_json(p, NULL, true);
        add_status(v, pubs, p, current, now);
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
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0 && strcmp(format, "xlsx") != 0) {
        respond_problem(r, 400, "malformed-request", "format must be json, csv or xlsx");
        return;
    }
    bool csv = format ? strcmp(format, "csv") == 0 : (accept && strstr(accept, "text/csv") && !strstr(accept, "json"));
    bool xlsx = format ? strcmp(format, "xlsx") == 0 : (accept && strstr(accept, XLSX_MEDIA_TYPE) && !strstr(accept, "json"));
    snapshot *s = public_snapshot(r);
    if (!s) return;
    const char *lang = req_query(r, "lang");
    if (xlsx) {
        const char *l = pick_lang(r, "en");
        const form *f = &s->forms[strcmp(l, "de") == 0 ? F_XLSX_DE : F_XLSX_EN];
        if (!f->body) {
            req_add_header(r, "Retry-After", "60");
            respond_problem(r, 503, "service-unavailable", "the XLSX could not be written (see the service's log)");
            return;
        }
        char disp[80];
        snprintf(disp, sizeof disp, "attachment; filename=\"subprocessors-v%d-%s.xlsx\"", s->current, l);
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

/* The page and the DPA annex: HTML in the asked language (r->route->data: the
 * German form; the English one follows it). */
static void handle_public_html(req *r)
{
    static const char *const allowed[] = {"lang", NULL};
    if (!req_check_query(r, allowed) || !lang_ok(r)) return;
    snapshot *s = public_snapshot(r);
    if (!s) return;
    const char *lang = pick_lang(r, "en");
    int de_form = *(const int *)r->route->data;
    req_add_header(r, "Content-Language", lang);
    req_add_header(r, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
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

