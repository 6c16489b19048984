#include "subreg/store.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/resource.h"
#include "subreg/util.h"

#define AUDIT_COLLECTION "audit"

/* Writes to one document are serialised inside the process. MongoDB makes the
 * {_id, version} filter of a replace atomic across instances; FerretDB's SQLite
 * backend evaluates the filter and writes in separate steps, so two concurrent
 * replaces could both match. The striped locks close that gap for a single
 * instance, and cost nothing measurable on MongoDB. */
#define STRIPES 64
static pthread_mutex_t stripes[STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe(const char *coll, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = coll; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_once(&stripes_once, stripes_init);
    return &stripes[h % STRIPES];
}

static mongoc_client_pool_t *pool;
static mongoc_uri_t *uri;
static char *db_name;

static void mongo_log(mongoc_log_level_t level, const char *domain, const char *message, void *user)
{
    (void)user;
    /* FerretDB answers endSessions with an error on shutdown: harmless noise. */
    if (strstr(message, "endSessions")) return;
    int lv = level <= MONGOC_LOG_LEVEL_ERROR ? LOG_ERROR : level == MONGOC_LOG_LEVEL_WARNING ? LOG_WARN : LOG_DEBUG;
    char fields[256];
    cJSON *d = cJSON_CreateString(domain);
    char *qd = cJSON_PrintUnformatted(d);
    snprintf(fields, sizeof fields, ",\"component\":\"mongoc\",\"domain\":%s", qd);
    free(qd);
    cJSON_Delete(d);
    log_event(lv, message, fields);
}

bool store_init(const char *uri_str, const char *db, int pool_size, char *err, size_t errlen)
{
    mongoc_init();
    mongoc_log_set_handler(mongo_log, NULL);
    bson_error_t e;
    uri = mongoc_uri_new_with_error(uri_str, &e);
    if (!uri) {
        snprintf(err, errlen, "SUBREG_MONGODB_URI: %s", e.message);
        return false;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME)) mongoc_uri_set_appname(uri, "subreg");
    pool = mongoc_client_pool_new(uri);
    if (!pool) {
        snprintf(err, errlen, "SUBREG_MONGODB_URI: cannot create a client pool");
        return false;
    }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_max_size(pool, (uint32_t)pool_size);
    db_name = xstrdup(db);
    return true;
}

void store_cleanup(void)
{
    if (pool) mongoc_client_pool_destroy(pool);
    if (uri) mongoc_uri_destroy(uri);
    free(db_name);
    pool = NULL;
    uri = NULL;
    db_name = NULL;
    mongoc_cleanup();
}

const char *store_status_name(store_status s)
{
    static const char *const names[] = {"ok", "not_found", "stale", "duplicate", "unavailable", "error"};
    return names[s];
}

static store_status map_error(const bson_error_t *e, const char *what)
{
    if (e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
        (e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
        e->code == MONGOC_ERROR_SERVER_SELECTION_FAILURE) {
        log_msgf(LOG_WARN, "database unavailable during %s: %s", what, e->message);
        return ST_UNAVAILABLE;
    }
    if (e->code == 11000) return ST_DUPLICATE;
    log_msgf(LOG_ERROR, "database error during %s: domain %u code %u: %s", what, e->domain, e->code, e->message);
    return ST_ERROR;
}

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
} handle;

static handle open_coll(const char *coll)
{
    handle h;
    h.client = mongoc_client_pool_pop(pool);
    h.coll = mongoc_client_get_collection(h.client, db_name, coll);
    return h;
}

static void close_coll(handle *h)
{
    mongoc_collection_destroy(h->coll);
    mongoc_client_pool_push(pool, h->client);
}

store_status store_ping(void)
{
    mongoc_client_t *c = mongoc_client_pool_pop(pool);
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t e;
    bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    mongoc_client_pool_push(pool, c);
    return ok ? ST_OK : map_error(&e, "ping");
}

static store_status create_indexes(mongoc_client_t *c, const char *coll, const char *const *specs)
{
    /* createIndexes as a command: mongoc 1.23 has no helper for it. */
    bson_t cmd = BSON_INITIALIZER, arr;
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    for (int i = 0; specs[i]; i++) {
        bson_t idx, key;
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &idx);
        BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
        /* spec "a,-b": fields, '-' for descending */
        char name[128] = "";
        char *s = xstrdup(specs[i]);
        for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int dir = 1;
            if (*t == '-') {
                dir = -1;
                t++;
            }
            BSON_APPEND_INT32(&key, t, dir);
            size_t nl = strlen(name);
            snprintf(name + nl, sizeof name - nl, "%s%s_%d", nl ? "_" : "", t, dir);
        }
        free(s);
        bson_append_document_end(&idx, &key);
        BSON_APPEND_UTF8(&idx, "name", name);
        bson_append_document_end(&arr, &idx);
    }
    bson_append_array_end(&cmd, &arr);
    mongoc_database_t *db = mongoc_client_get_database(c, db_name);
    bson_error_t e;
    bool ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e);
    mongoc_database_destroy(db);
    bson_destroy(&cmd);
    return ok ? ST_OK : map_error(&e, "createIndexes");
}

store_status store_migrate(void)
{
    mongoc_client_t *c = mongoc_client_pool_pop(pool);
    store_status st = ST_OK;
    for (int i = 0; RESOURCES[i] && st == ST_OK; i++) {
        const resource *r = RESOURCES[i];
        /* One index per list filter, plus the relay's sweep. */
        const char *specs[16];
        int n = 0;
        specs[n++] = "_outbox_pending";
        for (const filter_def *f = r->filters; f->param && n < 15; f++) specs[n++] = f->path;
        specs[n] = NULL;
        st = create_indexes(c, r->collection, specs);
    }
    if (st == ST_OK) {
        const char *audit[] = {"entity_id", "entity_type", "actor", "at", NULL};
        st = create_indexes(c, AUDIT_COLLECTION, audit);
    }
    mongoc_client_pool_push(pool, c);
    return st;
}

/* API shape → stored shape: "id" becomes "_id" (first), the rest follows. */
static bool to_stored(const cJSON *doc, bson_t *out)
{
    const char *id = json_get_str(doc, "id");
    if (!id) return false;
    BSON_APPEND_UTF8(out, "_id", id);
    cJSON *copy = cJSON_Duplicate(doc, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "id");
    bool ok = json_to_bson(copy, out);
    cJSON_Delete(copy);
    return ok;
}

/* Stored shape → API shape, internal members kept (callers strip them). */
static cJSON *from_stored(const bson_t *b)
{
    cJSON *raw = bson_to_json(b);
    cJSON *out = cJSON_CreateObject();
    cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(raw, "_id");
    if (id) cJSON_AddItemToObject(out, "id", id);
    while (raw->child) {
        cJSON *c = raw->child;
        char *name = xstrdup(c->string);
        cJSON_AddItemToObject(out, name, cJSON_DetachItemViaPointer(raw, c));
        free(name);
    }
    cJSON_Delete(raw);
    return out;
}

static void append_outbox(bson_t *doc, const cJSON *existing, const cJSON *record)
{
    bson_t arr;
    int i = 0;
    char k[16];
    BSON_APPEND_ARRAY_BEGIN(doc, "_outbox", &arr);
    if (cJSON_IsArray(existing)) {
        for (const cJSON *c = existing->child; c; c = c->next) {
            snprintf(k, sizeof k, "%d", i++);
            bson_t sub;
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &sub);
            json_to_bson(c, &sub);
            bson_append_document_end(&arr, &sub);
        }
    }
    if (record) {
        snprintf(k, sizeof k, "%d", i++);
        bson_t sub;
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &sub);
        json_to_bson(record, &sub);
        bson_append_document_end(&arr, &sub);
    }
    bson_append_array_end(doc, &arr);
    BSON_APPEND_BOOL(doc, "_outbox_pending", i > 0);
}

static store_status find_one(const char *coll, const char *id, bool live_only, cJSON **out)
{
    handle h = open_coll(coll);
    bson_t *filter = live_only ? BCON_NEW("_id", BCON_UTF8(id), "_deleted", "{", "$ne", BCON_BOOL(true), "}")
                               : BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    store_status st = ST_NOT_FOUND;
    if (mongoc_cursor_next(cur, &d)) {
        *out = from_stored(d);
        st = ST_OK;
    } else {
        bson_error_t e;
        if (mongoc_cursor_error(cur, &e)) st = map_error(&e, "find");
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    close_coll(&h);
    return st;
}

store_status store_get(const char *coll, const char *id, cJSON **out)
{
    return find_one(coll, id, true, out);
}

store_status store_get_raw(const char *coll, const char *id, cJSON **out)
{
    return find_one(coll, id, false, out);
}

store_status store_insert(const char *coll, const cJSON *doc, const cJSON *record)
{
    bson_t b = BSON_INITIALIZER;
    if (!to_stored(doc, &b)) {
        bson_destroy(&b);
        return ST_ERROR;
    }
    append_outbox(&b, NULL, record);
    handle h = open_coll(coll);
    bson_error_t e;
    bool ok = mongoc_collection_insert_one(h.coll, &b, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(&b);
    return ok ? ST_OK : map_error(&e, "insert");
}

store_status store_put_raw(const char *coll, const cJSON *doc)
{
    return store_insert(coll, doc, NULL);
}

/* Replaces {_id, version: expect} with doc; carries the stored outbox forward. */
static store_status versioned_replace(const char *coll, const char *id, int64_t expect, bson_t *replacement)
{
    handle h = open_coll(coll);
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id), "version", BCON_INT64(expect), "_deleted", "{", "$ne",
                           BCON_BOOL(true), "}");
    bson_t reply;
    bson_error_t e;
    store_status st;
    if (mongoc_collection_replace_one(h.coll, sel, replacement, NULL, &reply, &e)) {
        bson_iter_t it;
        int64_t matched = 0;
        if (bson_iter_init_find(&it, &reply, "matchedCount")) matched = bson_iter_as_int64(&it);
        st = matched == 1 ? ST_OK : ST_STALE;
    } else {
        st = map_error(&e, "replace");
    }
    bson_destroy(&reply);
    bson_destroy(sel);
    close_coll(&h);
    return st;
}

/* The outbox stored on the document, which must be live and at version expect.
 * Called under the document's stripe lock. */
static store_status stored_outbox(const char *coll, const char *id, int64_t expect, cJSON **outbox)
{
    cJSON *cur = NULL;
    store_status st = store_get_raw(coll, id, &cur);
    *outbox = NULL;
    if (st != ST_OK) return st;
    if (cJSON_IsTrue(json_get(cur, "_deleted"))) st = ST_NOT_FOUND;
    else if ((int64_t)cJSON_GetNumberValue(json_get(cur, "version")) != expect) st = ST_STALE;
    else *outbox = cJSON_DetachItemFromObjectCaseSensitive(cur, "_outbox");
    cJSON_Delete(cur);
    return st;
}

/* doc NULL: a tombstone replaces the document (delete). */
static store_status conditional_write(const char *coll, const char *id, const cJSON *doc, int64_t expect,
                                      const cJSON *record)
{
    pthread_mutex_t *mu = stripe(coll, id);
    pthread_mutex_lock(mu);
    cJSON *outbox = NULL;
    store_status st = stored_outbox(coll, id, expect, &outbox);
    if (st == ST_OK) {
        bson_t b = BSON_INITIALIZER;
        if (doc) {
            if (!to_stored(doc, &b)) st = ST_ERROR;
        } else {
            BSON_APPEND_UTF8(&b, "_id", id);
            BSON_APPEND_INT64(&b, "version", expect + 1);
            BSON_APPEND_BOOL(&b, "_deleted", true);
        }
        if (st == ST_OK) {
            append_outbox(&b, outbox, record);
            st = versioned_replace(coll, id, expect, &b);
        }
        bson_destroy(&b);
    }
    cJSON_Delete(outbox);
    pthread_mutex_unlock(mu);
    return st;
}

store_status store_replace(const char *coll, const cJSON *doc, int64_t expect, const cJSON *record)
{
    return conditional_write(coll, json_get_str(doc, "id"), doc, expect, record);
}

store_status store_delete(const char *coll, const char *id, int64_t expect, const cJSON *record)
{
    return conditional_write(coll, id, NULL, expect, record);
}

store_status store_update_raw(const char *coll, const char *id, const cJSON *set)
{
    bson_t s = BSON_INITIALIZER, upd = BSON_INITIALIZER;
    json_to_bson(set, &s);
    BSON_APPEND_DOCUMENT(&upd, "$set", &s);
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id));
    handle h = open_coll(coll);
    bson_error_t e;
    bool ok = mongoc_collection_update_one(h.coll, sel, &upd, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(sel);
    bson_destroy(&upd);
    bson_destroy(&s);
    return ok ? ST_OK : map_error(&e, "update");
}

store_status store_delete_raw(const char *coll, const char *id)
{
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id));
    handle h = open_coll(coll);
    bson_error_t e;
    bool ok = mongoc_collection_delete_one(h.coll, sel, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(sel);
    return ok ? ST_OK : map_error(&e, "delete");
}

static store_status flush_locked(const char *coll, const char *id);

store_status store_flush_outbox(const char *coll, const char *id)
{
    pthread_mutex_t *mu = stripe(coll, id);
    pthread_mutex_lock(mu);
    store_status st = flush_locked(coll, id);
    pthread_mutex_unlock(mu);
    return st;
}

static store_status flush_locked(const char *coll, const char *id)
{
    cJSON *doc = NULL;
    store_status st = store_get_raw(coll, id, &doc);
    if (st == ST_NOT_FOUND) return ST_OK;
    if (st != ST_OK) return st;
    const cJSON *pending = json_get(doc, "_outbox_pending");
    const cJSON *outbox = json_get(doc, "_outbox");
    if (!cJSON_IsTrue(pending)) {
        cJSON_Delete(doc);
        return ST_OK;
    }
    handle audit = open_coll(AUDIT_COLLECTION);
    bson_error_t e;
    for (const cJSON *r = outbox ? outbox->child : NULL; r && st == ST_OK; r = r->next) {
        bson_t b = BSON_INITIALIZER;
        if (!to_stored(r, &b)) {
            bson_destroy(&b);
            continue;
        }
        if (!mongoc_collection_insert_one(audit.coll, &b, NULL, NULL, &e)) {
            store_status s2 = map_error(&e, "audit insert");
            if (s2 != ST_DUPLICATE) st = s2; /* already relayed: fine */
        }
        bson_destroy(&b);
    }
    close_coll(&audit);
    if (st == ST_OK) {
        int64_t version = (int64_t)cJSON_GetNumberValue(json_get(doc, "version"));
        handle h = open_coll(coll);
        bson_t *sel = BCON_NEW("_id", BCON_UTF8(id), "version", BCON_INT64(version));
        bool ok;
        if (cJSON_IsTrue(json_get(doc, "_deleted"))) {
            ok = mongoc_collection_delete_one(h.coll, sel, NULL, NULL, &e);
        } else {
            bson_t *upd = BCON_NEW("$set", "{", "_outbox", "[", "]", "_outbox_pending", BCON_BOOL(false), "}");
            ok = mongoc_collection_update_one(h.coll, sel, upd, NULL, NULL, &e);
            bson_destroy(upd);
        }
        /* No match: a newer write carried these records forward; its flush
         * relays them again, and their ids make that harmless. */
        if (!ok) st = map_error(&e, "outbox clear");
        bson_destroy(sel);
        close_coll(&h);
    }
    cJSON_Delete(doc);
    return st;
}

store_status store_relay_pending(const char *const *collections, int *relayed)
{
    *relayed = 0;
    for (int i = 0; collections[i]; i++) {
        handle h = open_coll(collections[i]);
        bson_t *filter = BCON_NEW("_outbox_pending", BCON_BOOL(true));
        bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(500));
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
        const bson_t *d;
        char *ids[500];
        int n = 0;
        while (n < 500 && mongoc_cursor_next(cur, &d)) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, d, "_id") && BSON_ITER_HOLDS_UTF8(&it))
                ids[n++] = xstrdup(bson_iter_utf8(&it, NULL));
        }
        bson_error_t e;
        store_status st = ST_OK;
        if (mongoc_cursor_error(cur, &e)) st = map_error(&e, "relay sweep");
        mongoc_cursor_destroy(cur);
        bson_destroy(opts);
        bson_destroy(filter);
        close_coll(&h);
        for (int k = 0; k < n; k++) {
            if (st == ST_OK) {
                st = store_flush_outbox(collections[i], ids[k]);
                if (st == ST_OK) (*relayed)++;
            }
            free(ids[k]);
        }
        if (st != ST_OK) return st;
    }
    return ST_OK;
}

store_status store_list(const char *coll, bson_t *filter, const char *after_id, int limit, cJSON **items,
                        bool *more)
{
    bson_t sub;
    BSON_APPEND_DOCUMENT_BEGIN(filter, "_deleted", &sub);
    BSON_APPEND_BOOL(&sub, "$ne", true);
    bson_append_document_end(filter, &sub);
    if (after_id) {
        BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &sub);
        BSON_APPEND_UTF8(&sub, "$gt", after_id);
        bson_append_document_end(filter, &sub);
    }
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(limit + 1),
                            "projection", "{", "_outbox", BCON_INT32(0), "}");
    handle h = open_coll(coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    cJSON *arr = cJSON_CreateArray();
    int n = 0;
    *more = false;
    while (mongoc_cursor_next(cur, &d)) {
        if (n == limit) {
            *more = true;
            break;
        }
        cJSON_AddItemToArray(arr, from_stored(d));
        n++;
    }
    bson_error_t e;
    store_status st = ST_OK;
    if (mongoc_cursor_error(cur, &e)) st = map_error(&e, "list");
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    close_coll(&h);
    if (st != ST_OK) {
        cJSON_Delete(arr);
        return st;
    }
    *items = arr;
    return ST_OK;
}
