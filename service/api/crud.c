/* One set of handlers for every resource: parse → authorise (done by the router)
 * → validate with the resource's field table → domain rules → versioned store
 * write with its audit record in the same document → relay → respond. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subreg/api.h"
#include "subreg/cursor.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/resource.h"

#define IDEMPOTENCY_COLLECTION "idempotency"

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
        respond_problem(r, 503, "service-unavailable", "the database is unreachable; nothing was changed");
        break;
    default: respond_problem(r, 500, "internal-error", "the database reported an error"); break;
    }
}

/* The stored document as clients see it: internal members removed. */
static void to_public(cJSON *doc)
{
    cJSON *c = doc->child;
    while (c) {
        cJSON *next = c->next;
        if (c->string[0] == '_') cJSON_Delete(cJSON_DetachItemViaPointer(doc, c));
        c = next;
    }
}

static cJSON *audit_record(const req *r, const resource *res, const char *action, const char *id, int64_t version,
                           const char *at, const cJSON *before, const cJSON *after)
{
    cJSON *a = cJSON_CreateObject();
    char *aid = new_id("au_");
    cJSON_AddStringToObject(a, "id", aid);
    free(aid);
    cJSON_AddStringToObject(a, "at", at);
    cJSON_AddStringToObject(a, "actor", r->who.sub);
    cJSON_AddStringToObject(a, "action", action);
    cJSON_AddStringToObject(a, "entity_type", res->type);
    cJSON_AddStringToObject(a, "entity_id", id);
    cJSON_AddNumberToObject(a, "entity_version", (double)version);
    cJSON_AddStringToObject(a, "request_id", r->request_id);
    cJSON_AddItemToObject(a, "before", before ? cJSON_Duplicate(before, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(a, "after", after ? cJSON_Duplicate(after, 1) : cJSON_CreateNull());
    return a;
}

/* After the commit: the test hook that simulates a crash, then the relay. A
 * failed relay is not the client's problem: the sweep retries it. */
static void after_commit(const resource *res, const char *id)
{
    if (API.test_fault && strcmp(API.test_fault, "exit_after_commit") == 0) {
        log_msgf(LOG_WARN, "SUBREG_TEST_FAULT=exit_after_commit: exiting after the commit of %s", id);
        _exit(99);
    }
    store_status st = store_flush_outbox(res->collection, id);
    if (st != ST_OK) log_msgf(LOG_WARN, "outbox of %s not relayed yet (%s); the sweep will", id, store_status_name(st));
}

/* Server-owned members in their fixed order, then the client's fields. */
static cJSON *assemble(const resource *res, const char *id, int64_t version, const char *created, const char *updated,
                       const cJSON *client)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddNumberToObject(doc, "version", (double)version);
    cJSON_AddStringToObject(doc, "created_at", created);
    cJSON_AddStringToObject(doc, "updated_at", updated);
    /* Members in the order of the field table: stable, readable documents. */
    for (const field *f = res->fields; f->name; f++) {
        const cJSON *c = json_get(client, f->name);
        if (c && !(f->flags & FF_READONLY)) cJSON_AddItemToObject(doc, f->name, cJSON_Duplicate(c, 1));
    }
    return doc;
}

static bool check_rules(req *r, const resource *res, const cJSON *before, const cJSON *after)
{
    if (!res->check) return true;
    verrors errs;
    verrors_init(&errs);
    rule_result rr = {0};
    res->check(before, after, &errs, &rr);
    if (rr.status == 400) respond_validation(r, &errs);
    else if (rr.status == 422) respond_problem(r, 422, "unprocessable-entity", rr.detail);
    verrors_free(&errs);
    return rr.status == 0;
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
    store_status st = store_put_raw(IDEMPOTENCY_COLLECTION, rec);
    cJSON_Delete(rec);
    if (st == ST_OK) return IDEM_PROCEED;
    if (st != ST_DUPLICATE) {
        respond_store_error(r, st);
        return IDEM_ANSWERED;
    }
    cJSON *prev = NULL;
    st = store_get_raw(IDEMPOTENCY_COLLECTION, idem_id, &prev);
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
        store_delete_raw(IDEMPOTENCY_COLLECTION, idem_id);
        return;
    }
    cJSON *set = cJSON_CreateObject();
    cJSON_AddStringToObject(set, "state", "done");
    cJSON_AddNumberToObject(set, "status", status);
    cJSON_AddStringToObject(set, "location", location);
    cJSON_AddStringToObject(set, "etag", etag);
    cJSON_AddStringToObject(set, "response", response);
    store_update_raw(IDEMPOTENCY_COLLECTION, idem_id, set);
    cJSON_Delete(set);
}

/* ---- handlers ---------------------------------------------------------- */

static void handle_create(req *r)
{
    const resource *res = r->route->data;
    char idem_id[65] = "";
    cJSON *body = req_json_body(r, "application/json");
    if (!body) return;
    idem_outcome idem = idempotency_begin(r, idem_id);
    if (idem == IDEM_ANSWERED) {
        cJSON_Delete(body);
        return;
    }
    verrors errs;
    verrors_init(&errs);
    cJSON *doc = NULL;
    char *id = NULL, *out = NULL;
    char loc[256] = "", at[32];
    schema_apply_defaults(res->fields, body);
    if (!schema_validate(res->fields, body, &errs)) {
        respond_validation(r, &errs);
        goto done;
    }
    if (!check_rules(r, res, NULL, body)) goto done;
    id = new_id(res->id_prefix);
    format_rfc3339(now_ms(), at);
    doc = assemble(res, id, 1, at, at, body);
    cJSON *rec = audit_record(r, res, "create", id, 1, at, NULL, doc);
    store_status st = store_insert(res->collection, doc, rec);
    cJSON_Delete(rec);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    after_commit(res, id);
    snprintf(loc, sizeof loc, "%s/%s", res->path, id);
    req_add_header(r, "Location", loc);
    req_add_etag(r, 1);
    out = json_dump(doc);
    respond(r, 201, "application/json", out, strlen(out));
done:
    if (idem == IDEM_PROCEED) idempotency_finish(idem_id, r->status, r->status == 201 ? loc : NULL, "\"1\"", out);
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
    snprintf(tag, sizeof tag, "\"%lld\"", (long long)version);
    return strstr(h, tag) != NULL || strcmp(h, "*") == 0;
}

static void handle_get(req *r)
{
    const resource *res = r->route->data;
    if (!req_check_query(r, NULL)) return;
    cJSON *doc = NULL;
    store_status st = store_get(res->collection, r->param, &doc);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    to_public(doc);
    int64_t version = (int64_t)cJSON_GetNumberValue(json_get(doc, "version"));
    req_add_etag(r, version);
    if (if_none_match_hits(r, version)) respond_empty(r, 304);
    else respond_json(r, 200, doc);
    cJSON_Delete(doc);
}

/* ?limit, ?cursor and the resource's filters → a page of items. Shared with the
 * audit trail, whose "resource" is only a filter table. */
void list_page(req *r, const char *collection, const filter_def *filters, bson_t *filter)
{
    const char *allowed[MAX_QUERY + 3];
    int na = 0;
    allowed[na++] = "limit";
    allowed[na++] = "cursor";
    for (const filter_def *f = filters; f && f->param && na < MAX_QUERY + 2; f++) allowed[na++] = f->param;
    allowed[na] = NULL;
    if (!req_check_query(r, allowed)) return;
    int limit;
    if (!parse_limit(req_query(r, "limit"), &limit)) {
        respond_problem(r, 400, "malformed-request", "limit must be a positive integer (at most 200 are returned)");
        return;
    }
    char *after = NULL;
    const char *cur = req_query(r, "cursor");
    if (cur && !(after = cursor_decode(cur))) {
        respond_problem(r, 400, "malformed-request", "cursor is not one this service issued");
        return;
    }
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
        cJSON *wrap = cJSON_CreateObject();
        cJSON_AddItemToObject(wrap, "v", val);
        bson_t tmp = BSON_INITIALIZER;
        json_to_bson(wrap, &tmp);
        bson_iter_t it;
        if (f->path && bson_iter_init_find(&it, &tmp, "v")) bson_append_iter(filter, f->path, -1, &it);
        bson_destroy(&tmp);
        cJSON_Delete(wrap);
    }
    cJSON *items = NULL;
    bool more = false;
    store_status st = store_list(collection, filter, after, limit, &items, &more);
    free(after);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    cJSON *last = NULL;
    for (cJSON *c = items->child; c; c = c->next) {
        to_public(c);
        last = c;
    }
    cJSON *page = cJSON_CreateObject();
    cJSON_AddItemToObject(page, "items", items);
    if (more && last) {
        char *next = cursor_encode(json_get_str(last, "id"));
        cJSON_AddStringToObject(page, "next_cursor", next);
        free(next);
    }
    respond_json(r, 200, page);
    cJSON_Delete(page);
}

static void handle_list(req *r)
{
    const resource *res = r->route->data;
    bson_t filter = BSON_INITIALIZER;
    list_page(r, res->collection, res->filters, &filter);
    bson_destroy(&filter);
}

/* Loads the current state for a conditional write: 404, 412 answered here. */
static cJSON *load_for_write(req *r, const resource *res, int64_t expect)
{
    cJSON *cur = NULL;
    store_status st = store_get(res->collection, r->param, &cur);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return NULL;
    }
    to_public(cur);
    if ((int64_t)cJSON_GetNumberValue(json_get(cur, "version")) != expect) {
        respond_store_error(r, ST_STALE);
        cJSON_Delete(cur);
        return NULL;
    }
    return cur;
}

static void handle_patch(req *r)
{
    const resource *res = r->route->data;
    cJSON *patch = req_json_body(r, "application/merge-patch+json");
    if (!patch) return;
    int64_t expect;
    cJSON *cur = NULL, *client = NULL, *doc = NULL;
    verrors errs;
    verrors_init(&errs);
    if (!req_if_match(r, &expect)) goto done;
    if (!schema_check_patch(res->fields, patch, &errs)) {
        respond_validation(r, &errs);
        goto done;
    }
    if (!(cur = load_for_write(r, res, expect))) goto done;
    client = cJSON_Duplicate(cur, 1);
    schema_strip_server_fields(res->fields, client);
    merge_patch(client, patch);
    if (!schema_validate(res->fields, client, &errs)) {
        respond_validation(r, &errs);
        goto done;
    }
    if (!check_rules(r, res, cur, client)) goto done;
    char at[32];
    format_rfc3339(now_ms(), at);
    const char *created = json_get_str(cur, "created_at");
    doc = assemble(res, r->param, expect + 1, created ? created : at, at, client);
    cJSON *rec = audit_record(r, res, "update", r->param, expect + 1, at, cur, doc);
    store_status st = store_replace(res->collection, doc, expect, rec);
    cJSON_Delete(rec);
    if (st != ST_OK) {
        respond_store_error(r, st);
        goto done;
    }
    after_commit(res, r->param);
    req_add_etag(r, expect + 1);
    respond_json(r, 200, doc);
done:
    verrors_free(&errs);
    cJSON_Delete(doc);
    cJSON_Delete(client);
    cJSON_Delete(cur);
    cJSON_Delete(patch);
}

static void handle_delete(req *r)
{
    const resource *res = r->route->data;
    int64_t expect;
    if (!req_if_match(r, &expect)) return;
    cJSON *cur = load_for_write(r, res, expect);
    if (!cur) return;
    char at[32];
    format_rfc3339(now_ms(), at);
    cJSON *rec = audit_record(r, res, "delete", r->param, expect + 1, at, cur, NULL);
    store_status st = store_delete(res->collection, r->param, expect, rec);
    cJSON_Delete(rec);
    cJSON_Delete(cur);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    after_commit(res, r->param);
    respond_empty(r, 204);
}

int crud_routes(route *out, int cap)
{
    int n = 0;
    for (int i = 0; RESOURCES[i]; i++) {
        const resource *res = RESOURCES[i];
        const char *item = res->item_path;
        const route rs[] = {
            {"GET", res->path, handle_list, ROLE_READER, res},
            {"POST", res->path, handle_create, res->write_role, res},
            {"GET", item, handle_get, ROLE_READER, res},
            {"PATCH", item, handle_patch, res->write_role, res},
            {"DELETE", item, handle_delete, res->delete_role, res},
        };
        for (size_t k = 0; k < sizeof rs / sizeof rs[0] && n < cap; k++) out[n++] = rs[k];
    }
    return n;
}
