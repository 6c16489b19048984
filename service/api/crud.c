/* One set of handlers for every resource: parse → authorise (done by the router)
 * → validate with the descriptor's field table → its rules and lifecycle
 * (resource_rules) → references → doc_write (write.h: the versioned write and its
 * audit record) → respond. Also Idempotency-Key and migrate's seeding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/api.h"
#include "subreg/as_of.h"
#include "subreg/cursor.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"
#include "subreg/resource.h"
#include "subreg/write.h"


void respond_store_error(req *r, store_status st)
{
    switch (st) {
    case ST_NOT_FOUND: respond_problem(r, 404, "not-found", "no such resource"); break;
    case ST_STALE:
        respond_problem(r, 412, "precondition-failed", "the resource changed since the ETag in If-Match");
        break;
    case ST_DUPLICATE: respond_problem(r, 409, "conflict", "a resource with this identity exists"); break;
    case ST_UNAVAILABLE:
        req_add_header(r, "Retry-After", "5");
        respond_problem(r, 503, "service-unavailable",
                        "the database is unreachable or timed out; retry (after a write, GET shows whether it took "
                        "effect)");
        break;
    case ST_BUSY: {
        /* Another write of this version is in flight (or was cut off by the
         * database): its outcome is known within its lease. */
        char wait[24];
        int64_t s = (store_busy_wait_ms() + 999) / 1000;
        snprintf(wait, sizeof wait, "%lld", (long long)(s > 0 ? s : 1));
        req_add_header(r, "Retry-After", wait);
        respond_problem(r, 503, "write-in-progress",
                        "another change of this resource is still being written; retry after Retry-After seconds "
                        "with the same If-Match");
        break;
    }
    default: respond_problem(r, 500, "internal-error", "the database reported an error"); break;
    }
}

/* The client's fields in the order of the field table: stable, readable
 * documents (doc_write puts the server-owned members in front). */
static cJSON *assemble(const resource *res, const cJSON *client)
{
    cJSON *doc = cJSON_CreateObject();
    for (const field *f = res->fields; f->name; f++) {
        const cJSON *c = json_get(client, f->name);
        if (c && !(f->flags & FF_READONLY) && strcmp(f->name, "id") != 0)
            cJSON_AddItemToObject(doc, f->name, cJSON_Duplicate(c, 1));
    }
    return doc;
}

/* ---- references -----------------------------------------------------------
 * FT_REF fields (in objects at any depth, and arrays of them) name documents of
 * other collections. Writes must point at existing documents (422), and a
 * document that others point at cannot be deleted (409). */

typedef void (*ref_visit)(const field *f, const char *path, const char *pointer, const cJSON *value, void *ctx);

static void walk_refs(const field *fields, const cJSON *doc, const char *path, const char *ptr, ref_visit fn,
                      void *ctx)
{
    for (const field *f = fields; f->name; f++) {
        /* an array of references: each entry (the path matches any of them) */
        const field *ref = f->type == FT_REF ? f : f->type == FT_ARRAY && f->item->type == FT_REF ? f->item : NULL;
        if ((f->flags & FF_IMMUTABLE) || (!ref && f->type != FT_OBJECT)) continue;
        char p[256], q[256];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", f->name);
        snprintf(q, sizeof q, "%s/%s", ptr, f->name);
        const cJSON *v = doc ? json_get(doc, f->name) : NULL;
        if (ref && ref->ref && f->type == FT_ARRAY && doc) {
            int i = 0;
            for (const cJSON *e = cJSON_IsArray(v) ? v->child : NULL; e; e = e->next, i++) {
                char qi[280];
                snprintf(qi, sizeof qi, "%s/%d", q, i);
                fn(ref, p, qi, e, ctx);
            }
        } else if (ref && ref->ref) {
            fn(ref, p, q, v, ctx);
        } else if (f->type == FT_OBJECT && (!doc || cJSON_IsObject(v))) {
            walk_refs(f->fields, v, p, q, fn, ctx);
        }
    }
}

typedef struct {
    verrors errs;
    store_status st;
} ref_check;

static void check_one_ref(const field *f, const char *path, const char *pointer, const cJSON *v, void *ctx)
{
    (void)path;
    ref_check *rc = ctx;
    if (!cJSON_IsString(v) || rc->st != ST_OK) return;
    cJSON *target = NULL;
    store_status st = store_get(f->ref, v->valuestring, &target);
    cJSON_Delete(target);
    if (st == ST_NOT_FOUND) verrors_add(&rc->errs, pointer, "no %s with this id", f->ref);
    else if (st != ST_OK) rc->st = st;
}

int crud_check_state(const resource *res, const cJSON *before, const cJSON *client, verrors *errs, char *detail,
                     size_t detail_len, store_status *st)
{
    *st = ST_OK;
    if (!schema_validate(res->fields, client, errs)) return 400;
    rule_result rr = {0};
    resource_rules(res, before, client, errs, &rr);
    if (rr.status) {
        snprintf(detail, detail_len, "%s", rr.detail);
        return rr.status;
    }
    ref_check rc = {.st = ST_OK, .errs = *errs};
    walk_refs(res->fields, client, "", "", check_one_ref, &rc);
    *errs = rc.errs;
    *st = rc.st;
    if (rc.st != ST_OK) return 503;
    if (errs->count) {
        snprintf(detail, detail_len, "a referenced document does not exist");
        return 422;
    }
    return 0;
}

/* crud_check_state for a request: 400, 422 and 503 answered here. */
static bool check_state(req *r, const resource *res, const cJSON *before, const cJSON *client)
{
    verrors errs;
    verrors_init(&errs);
    char detail[256] = "";
    store_status st;
    int status = crud_check_state(res, before, client, &errs, detail, sizeof detail, &st);
    if (status == 400) respond_validation(r, &errs);
    else if (status == 422 && errs.count) respond_errors(r, 422, "unprocessable-entity", detail, &errs);
    else if (status == 422) respond_problem(r, 422, "unprocessable-entity", detail);
    else if (status) respond_store_error(r, st);
    verrors_free(&errs);
    return status == 0;
}

typedef struct {
    const char *collection; /* the target being deleted */
    const char *id;
    const resource *from;
    strbuf referrers;
    store_status st;
} referrer_scan;

static void count_referrers(const field *f, const char *path, const char *pointer, const cJSON *v, void *ctx)
{
    (void)pointer;
    (void)v;
    referrer_scan *s = ctx;
    if ((f->flags & FF_WEAK) || strcmp(f->ref, s->collection) != 0 || s->st != ST_OK) return;
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, path, s->id);
    /* the first few by name; counted only when there are more */
    cJSON *some = NULL;
    bool more = false;
    s->st = store_list(s->from->collection, &filter, NULL, false, 5, &some, &more);
    int64_t n = s->st == ST_OK ? cJSON_GetArraySize(some) : 0;
    if (s->st == ST_OK && more) s->st = store_count(s->from->collection, &filter, &n);
    bson_destroy(&filter);
    if (s->st == ST_OK && n > 0) {
        /* name them: the legal team must know what to change first */
        sb_printf(&s->referrers, "%s%lld %s (%s: ", s->referrers.len ? "; " : "", (long long)n, s->from->collection,
                  path);
        int k = 0;
        for (const cJSON *c = some ? some->child : NULL; c; c = c->next) {
            const char *rid = json_get_str(c, "id");
            if (rid) sb_printf(&s->referrers, "%s%s", k++ ? ", " : "", rid);
        }
        sb_puts(&s->referrers, n > k ? ", …)" : ")");
    }
    cJSON_Delete(some);
}

bool refuse_if_referenced(req *r, const char *collection, const char *id)
{
    referrer_scan s = {.collection = collection, .id = id, .st = ST_OK};
    for (int i = 0; RESOURCES[i] && s.st == ST_OK; i++) {
        s.from = RESOURCES[i];
        walk_refs(RESOURCES[i]->fields, NULL, "", "", count_referrers, &s);
    }
    bool refused = true;
    if (s.st != ST_OK) {
        respond_store_error(r, s.st);
    } else if (s.referrers.len) {
        strbuf d = {0};
        sb_printf(&d, "still referred to by %s", s.referrers.data);
        respond_problem(r, 409, "conflict", d.data);
        sb_free(&d);
    } else {
        refused = false;
    }
    sb_free(&s.referrers);
    return refused;
}

/* ---- Idempotency-Key ------------------------------------------------------
 * A record {state: pending|done, body_sha, status, location, etag, response}
 * keyed by sha256(sub, path, key). Only a completed create is kept: a request
 * that failed may be retried with the same key. */

typedef enum { IDEM_NONE, IDEM_PROCEED, IDEM_ANSWERED } idem_outcome;

static idem_outcome idempotency_begin(req *r, char idem_id[65])
{
    const char *key = req_header(r, "Idempotency-Key");
    if (!key) return IDEM_NONE;
    size_t n = strlen(key);
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++) ok = key[i] >= 0x21 && key[i] <= 0x7e;
    if (!ok) {
        respond_problem(r, 400, "malformed-request", "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return IDEM_ANSWERED;
    }
    strbuf sb = {0};
    sb_printf(&sb, "%s\n%s\n%s", r->who.sub, r->path, key);
    sha256_hex(sb.data, sb.len, idem_id);
    sb_free(&sb);
    char body_sha[65];
    sha256_hex(r->body ? r->body : "", r->body_len, body_sha);
    char at[32];
    format_rfc3339(now_ms(), at);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", idem_id);
    cJSON_AddStringToObject(rec, "state", "pending");
    cJSON_AddStringToObject(rec, "body_sha", body_sha);
    cJSON_AddStringToObject(rec, "created_at", at);
    store_status st = store_insert(COLL_IDEMPOTENCY, rec);
    cJSON_Delete(rec);
    if (st == ST_OK) return IDEM_PROCEED;
    if (st != ST_DUPLICATE) {
        respond_store_error(r, st);
        return IDEM_ANSWERED;
    }
    cJSON *prev = NULL;
    st = store_get(COLL_IDEMPOTENCY, idem_id, &prev);
    if (st != ST_OK) {
        respond_store_error(r, st == ST_NOT_FOUND ? ST_STALE : st);
        cJSON_Delete(prev);
        return IDEM_ANSWERED;
    }
    const char *prev_sha = json_get_str(prev, "body_sha");
    const char *state = json_get_str(prev, "state");
    if (!prev_sha || strcmp(prev_sha, body_sha) != 0) {
        respond_problem(r, 422, "unprocessable-entity", "this Idempotency-Key was used with a different body");
    } else if (!state || strcmp(state, "done") != 0) {
        respond_problem(r, 409, "conflict", "a request with this Idempotency-Key is still in progress");
    } else {
        const char *loc = json_get_str(prev, "location");
        const char *etag = json_get_str(prev, "etag");
        const char *body = json_get_str(prev, "response");
        if (loc) req_add_header(r, "Location", loc);
        if (etag) req_add_header(r, "ETag", etag);
        req_add_header(r, "Idempotent-Replayed", "true");
        respond(r, (int)cJSON_GetNumberValue(json_get(prev, "status")), "application/json", body ? body : "",
                body ? strlen(body) : 0);
    }
    cJSON_Delete(prev);
    return IDEM_ANSWERED;
}

static void idempotency_finish(const char *idem_id, int status, const char *location, const char *etag,
                               const char *response)
{
    if (status != 201) {
        store_delete(COLL_IDEMPOTENCY, idem_id);
        return;
    }
    cJSON *set = cJSON_CreateObject();
    cJSON_AddStringToObject(set, "state", "done");
    cJSON_AddNumberToObject(set, "status", status);
    cJSON_AddStringToObject(set, "location", location);
    cJSON_AddStringToObject(set, "etag", etag);
    cJSON_AddStringToObject(set, "response", response);
    store_update(COLL_IDEMPOTENCY, idem_id, set);
    cJSON_Delete(set);
}

/* ---- handlers ---------------------------------------------------------- */

/* On a nested route: the parent named by the path must exist (404 otherwise). */
static bool nested_parent(req *r, const resource *res)
{
    if (!res->parent_path || strcmp(r->route->pattern, res->parent_path) != 0) return false;
    const field *f = res->fields;
    while (f->name && strcmp(f->name, res->parent_field) != 0) f++;
    cJSON *parent = NULL;
    store_status st = f->name && f->ref ? store_get(f->ref, r->param, &parent) : ST_ERROR;
    cJSON_Delete(parent);
    if (st != ST_OK) respond_store_error(r, st);
    return true;
}

static void handle_create(req *r)
{
    const resource *res = r->route->data;
    char idem_id[65] = "";
    if (nested_parent(r, res) && r->responded) return;
    cJSON *body = req_json_body(r, "application/json");
    if (!body) return;
    if (res->parent_path && strcmp(r->route->pattern, res->parent_path) == 0) {
        if (json_get(body, res->parent_field)) {
            verrors e;
            verrors_init(&e);
            char ptr[80];
            snprintf(ptr, sizeof ptr, "/%s", res->parent_field);
            verrors_add(&e, ptr, "comes from the path; leave it out");
            respond_validation(r, &e);
            verrors_free(&e);
            cJSON_Delete(body);
            return;
        }
        cJSON_AddStringToObject(body, res->parent_field, r->param);
    }
    idem_outcome idem = idempotency_begin(r, idem_id);
    if (idem == IDEM_ANSWERED) {
        cJSON_Delete(body);
        return;
    }
    verrors errs;
    verrors_init(&errs);
    cJSON *doc = NULL;
    char *id = NULL, *out = NULL;
    char loc[256] = "";
    schema_apply_defaults(res->fields, body);
    if (!check_state(r, res, NULL, body)) goto done;
    if (res->io_check && !res->io_check(r, NULL, body)) goto done;
    id = res->client_ids ? xstrdup(json_get_str(body, "id")) : new_id(res->id_prefix);
    cJSON *extra = cJSON_CreateObject();
    int64_t version = 0;
    store_status st = crud_write_state(res, REQ_ORIGIN(r), id, NULL, NULL, body, extra, &version, &doc);
    doc_public(doc);
    while (extra->child) {
        cJSON *m = extra->child;
        char *name = xstrdup(m->string);
        cJSON_AddItemToObject(doc, name, cJSON_DetachItemViaPointer(extra, m));
        free(name);
    }
    cJSON_Delete(extra);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    snprintf(loc, sizeof loc, "%s/%s", res->path, id);
    req_add_header(r, "Location", loc);
    req_add_etag(r, version);
    out = json_dump(doc);
    respond(r, 201, "application/json", out, strlen(out));
done:
    if (idem == IDEM_PROCEED) {
        char etag[32];
        format_etag(doc ? (int64_t)cJSON_GetNumberValue(json_get(doc, "version")) : 1, etag);
        idempotency_finish(idem_id, r->status, r->status == 201 ? loc : NULL, etag, out);
    }
    verrors_free(&errs);
    free(out);
    free(id);
    cJSON_Delete(doc);
    cJSON_Delete(body);
}

static bool if_none_match_hits(req *r, int64_t version)
{
    const char *h = req_header(r, "If-None-Match");
    if (!h) return false;
    char tag[32];
    format_etag(version, tag);
    return strstr(h, tag) != NULL || strcmp(h, "*") == 0;
}

/* ?as_of=DATE: the document as it was at the end of that day (as_of.h). No
 * ETag: a past state cannot be written against, and If-None-Match does not apply. */
static void get_as_of(req *r, const resource *res)
{
    as_of when;
    if (!as_of_supported(res)) {
        respond_problem(r, 400, "malformed-request", "as_of: these documents are not in the audit trail");
        return;
    }
    if (!as_of_param(r, &when)) return;
    cJSON *doc = NULL;
    store_status st = when.past ? document_as_of(res, r->param, &when, &doc)
                                : store_get(res->collection, r->param, &doc);
    if (st == ST_NOT_FOUND) {
        char detail[200];
        snprintf(detail, sizeof detail, "no %s with this id existed at the end of %s (%s)", res->type, when.date,
                 local_zone());
        respond_problem(r, 404, "not-found", detail);
    } else if (st != ST_OK) {
        respond_store_error(r, st);
    } else {
        respond_json(r, 200, doc_public(doc));
    }
    cJSON_Delete(doc);
}

static void handle_get(req *r)
{
    const resource *res = r->route->data;
    static const char *const allowed[] = {"as_of", NULL};
    if (!req_check_query(r, allowed)) return;
    if (req_query(r, "as_of")) {
        get_as_of(r, res);
        return;
    }
    cJSON *doc = NULL;
    store_status st = store_get(res->collection, r->param, &doc);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    doc_public(doc);
    int64_t version = (int64_t)cJSON_GetNumberValue(json_get(doc, "version"));
    req_add_etag(r, version);
    if (if_none_match_hits(r, version)) respond_empty(r, 304);
    else respond_json(r, 200, doc);
    cJSON_Delete(doc);
}

/* ?limit, ?cursor and the resource's filters → a page of items. Shared with the
 * audit trail, whose "resource" is only a filter table. */
/* ---- the registry lists as a spreadsheet ----------------------------------------
 * ?format=xlsx on a resource's list: every matching document (from the cursor's
 * position if one is given; limit does not apply; at most XLSX_MAX_ROWS) in one worksheet, a column per top-level member of the field
 * table, each cell the member as text (lang picks a German/English text). */
#define XLSX_MAX_ROWS 20000

static void value_text(const cJSON *v, const char *lang, strbuf *out)
{
    if (!v || cJSON_IsNull(v)) return;
    if (cJSON_IsString(v)) sb_puts(out, v->valuestring);
    else if (cJSON_IsBool(v)) sb_puts(out, cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) sb_printf(out, "%.15g", v->valuedouble);
    else if (cJSON_IsObject(v) && json_get_str(v, "de") && json_get_str(v, "en") && cJSON_GetArraySize(v) == 2)
        sb_puts(out, json_get_str(v, lang));
    else if (cJSON_IsArray(v))
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child) sb_puts(out, "; ");
            value_text(c, lang, out);
        }
    else if (cJSON_IsObject(v))
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child) sb_puts(out, ", ");
            sb_printf(out, "%s: ", c->string);
            value_text(c, lang, out);
        }
}

typedef struct {
    const cJSON **docs;
    const char *const *columns;
    const char *lang;
} sheet_rows;

static void sheet_cell(void *ctx, int row, int col, strbuf *text)
{
    const sheet_rows *s = ctx;
    value_text(json_get(s->docs[row], s->columns[col]), s->lang, text);
}

static void list_xlsx(req *r, const char *collection, const field *fields, bson_t *filter, char *after, bool desc,
                      bool nothing)
{
    const char *lang = req_query(r, "lang");
    if (!lang) lang = "en";
    cJSON *all = cJSON_CreateArray(); /* from the cursor's position, if one was given (after, owned) */
    store_status st = ST_OK;
    bool more = !nothing;
    store_extend_deadline(XLSX_MAX_ROWS / 10); /* up to 2 s more for the pages of a large registry */
    while (more && st == ST_OK && cJSON_GetArraySize(all) <= XLSX_MAX_ROWS) {
        cJSON *page = NULL;
        st = store_list(collection, filter, after, desc, 500, &page, &more);
        free(after);
        after = NULL;
        if (st != ST_OK) break;
        while (page->child) cJSON_AddItemToArray(all, doc_public(cJSON_DetachItemViaPointer(page, page->child)));
        cJSON_Delete(page);
        const cJSON *last = cJSON_GetArrayItem(all, cJSON_GetArraySize(all) - 1);
        if (more && last) after = xstrdup(json_get_str(last, "id"));
    }
    free(after);
    int n = cJSON_GetArraySize(all);
    if (st != ST_OK) {
        respond_store_error(r, st);
    } else if (n > XLSX_MAX_ROWS) {
        char d[120];
        snprintf(d, sizeof d, "more than %d documents match: narrow the filter", XLSX_MAX_ROWS);
        respond_problem(r, 422, "unprocessable-entity", d);
    } else {
        const char *cols[64];
        int ncols = 0;
        for (const field *f = fields; f->name && ncols < 64; f++) cols[ncols++] = f->name;
        sheet_rows rows = {.docs = xcalloc((size_t)n + 1, sizeof *rows.docs), .columns = cols, .lang = lang};
        int k = 0;
        for (const cJSON *d = all->child; d; d = d->next) rows.docs[k++] = d;
        strbuf out = {0};
        char sheet[32];
        snprintf(sheet, sizeof sheet, "%.31s", collection);
        if (xlsx_sheet(sheet, cols, ncols, n, sheet_cell, &rows, (time_t)(now_ms() / 1000), &out)) {
            char disp[96], day[16];
            format_date(now_ms(), day);
            snprintf(disp, sizeof disp, "attachment; filename=\"%s-%s.xlsx\"", collection, day);
            req_add_header(r, "Content-Disposition", disp);
            respond(r, 200, XLSX_MEDIA_TYPE, out.data, out.len);
        } else {
            respond_problem(r, 500, "internal-error", "the spreadsheet could not be written (see the service's log)");
            log_msgf(LOG_ERROR, "%s: the XLSX could not be written (is TMPDIR or /tmp writable?)", collection);
        }
        sb_free(&out);
        free(rows.docs);
    }
    cJSON_Delete(all);
}

static void list_page_of(req *r, const char *collection, const filter_def *filters, const field *fields,
                         bson_t *filter);

/* A page of a list without a descriptor (the audit trail): JSON only. */
void list_page(req *r, const char *collection, const filter_def *filters, bson_t *filter)
{
    list_page_of(r, collection, filters, NULL, filter);
}

/* A page of a list; with a field table (a resource) also ?format=xlsx. */
static void list_page_of(req *r, const char *collection, const filter_def *filters, const field *fields, bson_t *filter)
{
    const char *allowed[MAX_QUERY + 4];
    int na = 0;
    allowed[na++] = "limit";
    allowed[na++] = "cursor";
    allowed[na++] = "order";
    if (fields) {
        allowed[na++] = "format";
        allowed[na++] = "lang";
    }
    for (const filter_def *f = filters; f && f->param && na < MAX_QUERY + 3; f++) allowed[na++] = f->param;
    allowed[na] = NULL;
    if (!req_check_query(r, allowed)) return;
    const char *format = req_query(r, "format");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "xlsx") != 0) {
        respond_problem(r, 400, "malformed-request", "format must be json or xlsx");
        return;
    }
    bool xlsx = format && strcmp(format, "xlsx") == 0;
    const char *lang = req_query(r, "lang"); /* the spreadsheet's texts; a JSON page has both */
    if (lang && strcmp(lang, "de") != 0 && strcmp(lang, "en") != 0) {
        respond_problem(r, 400, "malformed-request", "lang must be de or en");
        return;
    }
    int limit;
    if (!parse_limit(req_query(r, "limit"), &limit)) {
        respond_problem(r, 400, "malformed-request", "limit must be a positive integer (at most 200 are returned)");
        return;
    }
    /* ?order=desc: newest first (ids are time-ordered); a cursor keeps the
     * direction of the page that issued it */
    const char *order = req_query(r, "order");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        respond_problem(r, 400, "malformed-request", "order must be asc or desc");
        return;
    }
    bool desc = order && strcmp(order, "desc") == 0;
    char *after = NULL;
    const char *cur = req_query(r, "cursor");
    bool cur_desc = false;
    if (cur && !(after = cursor_decode(cur, &cur_desc))) {
        respond_problem(r, 400, "malformed-request", "cursor is not one this service issued");
        return;
    }
    if (cur && order && cur_desc != desc) {
        respond_problem(r, 400, "malformed-request", "the cursor belongs to the other order");
        free(after);
        return;
    }
    if (cur) desc = cur_desc;
    for (const filter_def *f = filters; f && f->param; f++) {
        const char *v = req_query(r, f->param);
        if (!v) continue;
        char msg[200];
        cJSON *val = schema_parse_scalar(f->type, v, msg, sizeof msg);
        if (!val) {
            char detail[300];
            snprintf(detail, sizeof detail, "query parameter %s: %s", f->param, msg);
            respond_problem(r, 400, "malformed-request", detail);
            free(after);
            return;
        }
        bson_iter_t fixed;
        if (!f->op && bson_iter_init_find(&fixed, filter, f->path)) {
            /* A nested list's path already fixes this field (?publication_id= on
             * /v1/publications/{id}/objections): both must hold, so another value
             * matches nothing (and the filter document never has the key twice). */
            bool same = BSON_ITER_HOLDS_UTF8(&fixed) && cJSON_IsString(val) &&
                        strcmp(bson_iter_utf8(&fixed, NULL), val->valuestring) == 0;
            cJSON_Delete(val);
            if (same) continue;
            if (xlsx) list_xlsx(r, collection, fields, filter, after, desc, true);
            else respond(r, 200, "application/json", "{\"items\":[]}", 12);
            if (!xlsx) free(after);
            return;
        }
        if (f->type->type == FT_DATETIME) {
            /* Stored times are canonical "YYYY-MM-DDTHH:MM:SSZ": they sort as strings. */
            int64_t ms = 0;
            char canon[32];
            parse_rfc3339(v, &ms);
            format_rfc3339(ms, canon);
            cJSON_SetValuestring(val, canon);
        }
        cJSON *wrap = cJSON_CreateObject();
        if (f->op) cJSON_AddItemToObject(cJSON_AddObjectToObject(wrap, "v"), f->op, val);
        else cJSON_AddItemToObject(wrap, "v", val);
        bson_t tmp = BSON_INITIALIZER;
        /* json_to_bson refuses '$' keys on principle: build the operator here. */
        if (f->op) {
            bson_t sub;
            BSON_APPEND_DOCUMENT_BEGIN(&tmp, "v", &sub);
            bson_t inner = BSON_INITIALIZER;
            cJSON *one = cJSON_CreateObject();
            cJSON_AddItemToObject(one, "x", cJSON_Duplicate(val, 1));
            json_to_bson(one, &inner);
            bson_iter_t iv;
            if (bson_iter_init_find(&iv, &inner, "x")) bson_append_iter(&sub, f->op, -1, &iv);
            bson_destroy(&inner);
            cJSON_Delete(one);
            bson_append_document_end(&tmp, &sub);
        } else {
            json_to_bson(wrap, &tmp);
        }
        bson_iter_t it;
        if (bson_iter_init_find(&it, &tmp, "v")) bson_append_iter(filter, f->path, -1, &it);
        bson_destroy(&tmp);
        cJSON_Delete(wrap);
    }
    if (xlsx) {
        list_xlsx(r, collection, fields, filter, after, desc, false);
        return;
    }
    /* The page is written as text straight from the driver's documents: no
     * cJSON tree for 50 documents (its allocations were most of a list's CPU). */
    strbuf body = {0};
    sb_puts(&body, "{\"items\":[");
    char *last = NULL;
    bool more = false;
    store_status st = store_list_text(collection, filter, after, desc, limit, &body, &last, &more);
    free(after);
    if (st != ST_OK) {
        sb_free(&body);
        respond_store_error(r, st);
        return;
    }
    sb_puts(&body, "]");
    if (more && last) {
        char *next = cursor_encode(last, desc);
        sb_printf(&body, ",\"next_cursor\":\"%s\"", next);
        free(next);
    }
    sb_puts(&body, "}");
    respond(r, 200, "application/json", body.data, body.len);
    sb_free(&body);
    free(last);
}

static void handle_list(req *r)
{
    const resource *res = r->route->data;
    if (nested_parent(r, res) && r->responded) return;
    bson_t filter = BSON_INITIALIZER;
    if (r->param && res->parent_field) BSON_APPEND_UTF8(&filter, res->parent_field, r->param);
    list_page_of(r, res->collection, res->filters, res->fields, &filter);
    bson_destroy(&filter);
}

/* What an update keeps that the client does not send: read-only members the
 * server maintains (other than id, version and the times) and the resource's
 * listed internal members. */
static void carry_server_state(const resource *res, const cJSON *raw, cJSON *doc)
{
    for (const field *f = res->fields; f->name; f++) {
        if (!(f->flags & FF_READONLY) || json_get(doc, f->name)) continue;
        const cJSON *v = json_get(raw, f->name);
        if (v) cJSON_AddItemToObject(doc, f->name, cJSON_Duplicate(v, 1));
    }
    for (const char *const *k = res->keep_internal; k && *k; k++) {
        const cJSON *v = json_get(raw, *k);
        if (v) cJSON_AddItemToObject(doc, *k, cJSON_Duplicate(v, 1));
    }
}

store_status crud_write_state(const resource *res, const write_origin *by, const char *id, const cJSON *raw,
                              const cJSON *before, const cJSON *client, cJSON *extra, int64_t *version, cJSON **out)
{
    cJSON *doc = assemble(res, client);
    if (!raw && res->on_create) {
        cJSON *shown = extra ? extra : cJSON_CreateObject();
        res->on_create(doc, shown);
        if (shown != extra) cJSON_Delete(shown);
    }
    if (raw) {
        carry_server_state(res, raw, doc);
        if (res->on_update) res->on_update(before, doc);
    }
    store_status st = doc_write(res, by, NULL, id, raw, doc, version);
    if (out) *out = doc;
    else cJSON_Delete(doc);
    return st;
}

/* Loads the current state for a conditional write if If-Match allows its
 * version; 404 and 412 answered here. Returns the public view; *raw receives the
 * stored document with its internal members (the write's "before"). */
static cJSON *load_for_write(req *r, const resource *res, const char *if_match, cJSON **raw)
{
    cJSON *cur = NULL;
    store_status st = store_get(res->collection, r->param, &cur);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return NULL;
    }
    char etag[32];
    format_etag((int64_t)cJSON_GetNumberValue(json_get(cur, "version")), etag);
    if (!if_match_allows(if_match, etag)) {
        respond_store_error(r, ST_STALE);
        cJSON_Delete(cur);
        return NULL;
    }
    *raw = cJSON_Duplicate(cur, 1);
    doc_public(cur);
    return cur;
}

static void handle_patch(req *r)
{
    const resource *res = r->route->data;
    cJSON *patch = req_json_body(r, "application/merge-patch+json");
    if (!patch) return;
    cJSON *cur = NULL, *client = NULL, *doc = NULL, *raw = NULL;
    verrors errs;
    verrors_init(&errs);
    const char *if_match = req_if_match(r);
    if (!if_match) goto done;
    if (!schema_check_patch(res->fields, patch, &errs)) {
        respond_validation(r, &errs);
        goto done;
    }
    if (!(cur = load_for_write(r, res, if_match, &raw))) goto done;
    client = cJSON_Duplicate(cur, 1);
    schema_strip_server_fields(res->fields, client);
    merge_patch(client, patch);
    if (!check_state(r, res, cur, client)) goto done;
    if (res->io_check && !res->io_check(r, cur, client)) goto done;
    int64_t version = 0;
    store_status st = crud_write_state(res, REQ_ORIGIN(r), r->param, raw, cur, client, NULL, &version, &doc);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    req_add_etag(r, version);
    doc_public(doc);
    respond_json(r, 200, doc);
done:
    verrors_free(&errs);
    cJSON_Delete(raw);
    cJSON_Delete(doc);
    cJSON_Delete(client);
    cJSON_Delete(cur);
    cJSON_Delete(patch);
}

static void handle_delete(req *r)
{
    const resource *res = r->route->data;
    const char *if_match = req_if_match(r);
    if (!if_match) return;
    cJSON *raw = NULL;
    cJSON *cur = load_for_write(r, res, if_match, &raw);
    if (!cur) return;
    store_status st = ST_OK;
    if (!refuse_if_referenced(r, res->collection, r->param) &&
        !(res == &RES_SUBPROCESSOR && refuse_if_published(r, r->param)))
        st = doc_write(res, REQ_ORIGIN(r), NULL, r->param, raw, NULL, NULL);
    cJSON_Delete(raw);
    cJSON_Delete(cur);
    if (r->responded) return;
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    respond_empty(r, 204);
}

int crud_routes(route *out, int cap)
{
    int n = 0;
    for (int i = 0; RESOURCES[i]; i++) {
        const resource *res = RESOURCES[i];
        if (!resource_roles_declared(res)) {
            log_msgf(LOG_ERROR, "resource %s declares no read, write or delete role: no routes", res->type);
            return -1;
        }
        const char *item = res->item_path;
        role read = res->read_role;
        const route rs[] = {
            {"GET", res->path, handle_list, read, res, 0},
            {"POST", res->path, handle_create, res->write_role, res, 0},
            {"GET", item, handle_get, read, res, 0},
            {"PATCH", item, handle_patch, res->write_role, res, 0},
            {"DELETE", item, handle_delete, res->delete_role, res, 0},
        };
        unsigned want = res->routes ? res->routes : (R_LIST | R_GET | R_CREATE | R_PATCH | R_DELETE);
        if (res->parent_path && n + 2 <= cap) {
            if (want & R_LIST) out[n++] = (route){"GET", res->parent_path, handle_list, read, res, 0};
            if (want & R_CREATE) out[n++] = (route){"POST", res->parent_path, handle_create, res->write_role, res, 0};
        }
        static const unsigned bits[] = {R_LIST, R_CREATE, R_GET, R_PATCH, R_DELETE};
        for (size_t k = 0; k < sizeof rs / sizeof rs[0] && n < cap; k++)
            /* a nested resource is created under its parent only */
            if ((want & bits[k]) && !(bits[k] == R_CREATE && res->parent_path)) out[n++] = rs[k];
    }
    return n;
}

/* ---- seeding reference data (subreg migrate) -------------------------------
 * A seeded document carries _seed_hash, the hash of the seed it came from. An
 * admin's change goes through the normal update path, which keeps no internal
 * members: the document loses _seed_hash and later seeds leave it alone. The
 * seed_log remembers what was seeded, so a document an admin deleted is not
 * brought back. */


static store_status seed_one(const resource *res, cJSON *seed, const cJSON *docs, const cJSON *logs,
                             const char *run_id, int *inserted, int *updated)
{
    schema_apply_defaults(res->fields, seed);
    verrors errs;
    verrors_init(&errs);
    rule_result rr = {0};
    bool valid = schema_validate(res->fields, seed, &errs);
    if (valid) resource_rules(res, NULL, seed, &errs, &rr);
    const char *id = json_get_str(seed, "id");
    if (!valid || rr.status != 0 || !id) {
        char *e = json_dump(errs.list);
        log_msgf(LOG_ERROR, "seed for %s %s is invalid: %s %s", res->type, id ? id : "?", e, rr.detail);
        free(e);
        verrors_free(&errs);
        return ST_ERROR;
    }
    verrors_free(&errs);
    char *canon = json_dump(seed), hash[65];
    sha256_hex(canon, strlen(canon), hash);
    free(canon);
    char log_id[160];
    snprintf(log_id, sizeof log_id, "%s:%s", res->collection, id);
    char at[32];
    format_rfc3339(now_ms(), at);

    const cJSON *log = json_find_by_id(logs, log_id);
    cJSON *cur = cJSON_Duplicate(json_find_by_id(docs, id), 1);
    cJSON *doc = NULL;
    store_status st = ST_OK;
    const char *logged = log ? json_get_str(log, "hash") : NULL;
    const write_origin by = {ACTOR_MIGRATE, run_id, 0};
    if (!cur && !log) {
        doc = assemble(res, seed);
        cJSON_AddStringToObject(doc, "_seed_hash", hash);
        st = doc_write(res, &by, NULL, id, NULL, doc, NULL);
        if (st == ST_OK) (*inserted)++;
    } else if (cur && log && (!logged || strcmp(logged, hash) != 0)) {
        const char *was = json_get_str(cur, "_seed_hash");
        if (was && strcmp(was, hash) != 0) {
            doc = assemble(res, seed);
            cJSON_AddStringToObject(doc, "_seed_hash", hash);
            st = doc_write(res, &by, NULL, id, cur, doc, NULL);
            if (st == ST_OK) (*updated)++;
        }
    }
    /* cur && !log: an admin created it first; !cur && log: an admin deleted it;
     * a document without _seed_hash: an admin edited it. The admin's word stands. */
    if (st == ST_OK && (!logged || strcmp(logged, hash) != 0)) {
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "hash", hash);
        cJSON_AddStringToObject(entry, "at", at);
        if (log) {
            st = store_update(COLL_SEED_LOG, log_id, entry);
        } else {
            cJSON_AddStringToObject(entry, "id", log_id);
            st = store_insert(COLL_SEED_LOG, entry);
        }
        cJSON_Delete(entry);
    }
    cJSON_Delete(doc);
    cJSON_Delete(cur);
    return st;
}

store_status crud_seed(const resource *res, const char *json, int *inserted, int *updated)
{
    char err[128];
    cJSON *arr = json_parse_strict(json, strlen(json), err, sizeof err);
    if (!cJSON_IsArray(arr)) {
        log_msgf(LOG_ERROR, "seed data for %s is not a JSON array: %s", res->type, err);
        cJSON_Delete(arr);
        return ST_ERROR;
    }
    cJSON *docs = NULL, *logs = NULL;
    store_status st = store_list_all(res->collection, &docs);
    if (st == ST_OK) st = store_list_all(COLL_SEED_LOG, &logs);
    char *run_id = new_id("migrate_");
    for (cJSON *c = arr->child; c && st == ST_OK; c = c->next)
        st = seed_one(res, c, docs, logs, run_id, inserted, updated);
    free(run_id);
    cJSON_Delete(logs);
    cJSON_Delete(docs);
    cJSON_Delete(arr);
    return st;
}
