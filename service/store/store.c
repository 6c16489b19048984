#include "subreg/collections.h"
#include "subreg/store.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/resource.h"
#include "subreg/util.h"


static mongoc_client_pool_t *pool;
static mongoc_uri_t *uri;
static char *db_name;

static void mongo_log(mongoc_log_level_t level, const char *domain, const char *message, void *user)
{
    (void)user;
    /* FerretDB answers endSessions with an error on shutdown: harmless noise. */
    if (strstr(message, "endSessions")) return;
    int lv = level <= MONGOC_LOG_LEVEL_ERROR ? LOG_ERROR : level == MONGOC_LOG_LEVEL_WARNING ? LOG_WARN : LOG_DEBUG;
    strbuf f = {0};
    log_field(&f, "component", "mongoc");
    log_field(&f, "domain", domain);
    log_event(lv, message, f.data);
    sb_free(&f);
}

bool store_init(const char *uri_str, const char *db, int pool_size, int op_timeout_ms, char *err, size_t errlen)
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
    /* No operation waits on its socket longer than a request's deadline (see
     * store_set_deadline); bounded operations also keep a claim's lease
     * meaningful (see store_write). */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, op_timeout_ms);
    /* A retry would be a second operation inside one call, possibly after the
     * deadline: the client retries instead (503 with Retry-After). */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYREADS)) mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYWRITES))
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, false);
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

int store_socket_timeout_ms(void)
{
    return uri ? mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 300000) : 0;
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
    static const char *const names[] = {"ok", "not_found", "stale", "duplicate", "unavailable", "busy", "error"};
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

/* The deadline of this thread's current request (monotonic ms; 0: none, as on
 * the background threads). */
static __thread int64_t deadline_ms;

void store_set_deadline(int64_t mono_deadline_ms)
{
    deadline_ms = mono_deadline_ms;
}

void store_extend_deadline(int64_t extra_ms)
{
    if (deadline_ms) deadline_ms += extra_ms;
}

static bool past_deadline(const char *what)
{
    if (!deadline_ms || mono_ms() < deadline_ms) return false;
    log_msgf(LOG_WARN, "request deadline passed before an operation on %s: answered as database unavailable", what);
    return true;
}

/* A pooled client for one operation: NULL, without touching the database, once
 * the request's deadline has passed (also while waiting for a free client). */
static mongoc_client_t *pop_client(const char *what)
{
    if (!deadline_ms) return mongoc_client_pool_pop(pool);
    for (;;) {
        if (past_deadline(what)) return NULL;
        mongoc_client_t *c = mongoc_client_pool_try_pop(pool);
        if (c) return c;
        usleep(2000);
    }
}

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
} handle;

/* false (ST_UNAVAILABLE for the caller) when the deadline has passed. */
static bool open_coll(const char *coll, handle *h)
{
    h->client = pop_client(coll);
    if (!h->client) return false;
    h->coll = mongoc_client_get_collection(h->client, db_name, coll);
    return true;
}

static void close_coll(handle *h)
{
    mongoc_collection_destroy(h->coll);
    mongoc_client_pool_push(pool, h->client);
}

store_status store_ping(void)
{
    mongoc_client_t *c = pop_client("ping");
    if (!c) return ST_UNAVAILABLE;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t e;
    bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    mongoc_client_pool_push(pool, c);
    return ok ? ST_OK : map_error(&e, "ping");
}

/* One index per createIndexes command: FerretDB 1.24 drops the connection (an
 * internal panic) when a command lists two or more indexes that all exist already,
 * i.e. on every second migrate. mongoc 1.23 has no helper, hence the command. */
static store_status create_index(mongoc_client_t *c, const char *coll, const char *spec)
{
    bson_t cmd = BSON_INITIALIZER, arr, idx, key;
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    /* spec "a,-b": fields, '-' for descending; a leading '!' makes it unique */
    bool unique = spec[0] == '!';
    char name[128] = "";
    char *s = xstrdup(spec + unique);
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
    if (unique) BSON_APPEND_BOOL(&idx, "unique", true);
    bson_append_document_end(&arr, &idx);
    bson_append_array_end(&cmd, &arr);
    mongoc_database_t *db = mongoc_client_get_database(c, db_name);
    bson_error_t e;
    bool ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e);
    mongoc_database_destroy(db);
    bson_destroy(&cmd);
    return ok ? ST_OK : map_error(&e, "createIndexes");
}

static store_status create_indexes(mongoc_client_t *c, const char *coll, const char *const *specs)
{
    store_status st = ST_OK;
    for (int i = 0; specs[i] && st == ST_OK; i++) st = create_index(c, coll, specs[i]);
    return st;
}

store_status store_migrate(void)
{
    mongoc_client_t *c = pop_client("migrate");
    if (!c) return ST_UNAVAILABLE;
    store_status st = ST_OK;
    for (int i = 0; RESOURCES[i] && st == ST_OK; i++) {
        const resource *r = RESOURCES[i];
        /* One index per list filter, plus the recovery sweep's. */
        const char *specs[16];
        int n = 0;
        for (const filter_def *f = r->filters; f->param && n < 15; f++) specs[n++] = f->path;
        specs[n] = NULL;
        st = create_indexes(c, r->collection, specs);
    }
    if (st == ST_OK) {
        /* The claim: one audit record per entity version (see store.h). */
        const char *audit[] = {"!entity_type,entity_id,entity_version", "entity_id", "actor", "at", NULL};
        st = create_indexes(c, COLL_AUDIT, audit);
    }
    if (st == ST_OK) {
        const char *chunks[] = {"document_id,n", NULL};
        st = create_indexes(c, COLL_DOCUMENT_CHUNKS, chunks);
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

/* A projection leaving out the top-level members omit names (separated by
 * commas; NULL: none). */
static void omit_members(bson_t *opts, const char *omit)
{
    if (!omit) return;
    bson_t proj;
    BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
    for (const char *p = omit; *p;) {
        size_t n = strcspn(p, ",");
        bson_append_int32(&proj, p, (int)n, 0);
        p += n + (p[n] == ',');
    }
    bson_append_document_end(opts, &proj);
}

static store_status find_one(const char *coll, const char *id, const char *omit, cJSON **out)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    omit_members(opts, omit);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    store_status st = ST_NOT_FOUND;
    if (mongoc_cursor_next(cur, &d)) {
        *out = bson_to_api_json(d);
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
    return find_one(coll, id, NULL, out);
}

store_status store_get_omit(const char *coll, const char *id, const char *omit, cJSON **out)
{
    return find_one(coll, id, omit, out);
}

static store_status insert_doc(const char *coll, const cJSON *doc)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t b = BSON_INITIALIZER;
    if (!to_stored(doc, &b)) {
        bson_destroy(&b);
        close_coll(&h);
        return ST_ERROR;
    }
    bson_error_t e;
    bool ok = mongoc_collection_insert_one(h.coll, &b, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(&b);
    return ok ? ST_OK : map_error(&e, "insert");
}

store_status store_insert(const char *coll, const cJSON *doc)
{
    return insert_doc(coll, doc);
}

/* Replaces (doc) or deletes (doc NULL) {_id, version: expect}: ST_STALE when
 * nothing matched. */
static store_status versioned_apply(const char *coll, const char *id, int64_t expect, const cJSON *doc)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t b = BSON_INITIALIZER;
    if (doc && !to_stored(doc, &b)) {
        bson_destroy(&b);
        close_coll(&h);
        return ST_ERROR;
    }
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id), "version", BCON_INT64(expect));
    bson_t reply;
    bson_error_t e;
    store_status st;
    bool ok = doc ? mongoc_collection_replace_one(h.coll, sel, &b, NULL, &reply, &e)
                  : mongoc_collection_delete_one(h.coll, sel, NULL, &reply, &e);
    if (ok) {
        bson_iter_t it;
        int64_t n = 0;
        if (bson_iter_init_find(&it, &reply, doc ? "matchedCount" : "deletedCount")) n = bson_iter_as_int64(&it);
        st = n == 1 ? ST_OK : ST_STALE;
    } else {
        st = map_error(&e, doc ? "replace" : "delete");
    }
    bson_destroy(&reply);
    bson_destroy(sel);
    close_coll(&h);
    bson_destroy(&b);
    return st;
}

store_status store_update(const char *coll, const char *id, const cJSON *set)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t s = BSON_INITIALIZER, upd = BSON_INITIALIZER;
    json_to_bson(set, &s);
    BSON_APPEND_DOCUMENT(&upd, "$set", &s);
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id));
    bson_error_t e;
    bool ok = mongoc_collection_update_one(h.coll, sel, &upd, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(sel);
    bson_destroy(&upd);
    bson_destroy(&s);
    return ok ? ST_OK : map_error(&e, "update");
}

store_status store_stamp_bump(const char *name)
{
    handle h;
    if (!open_coll(COLL_STAMPS, &h)) return ST_UNAVAILABLE;
    char *token = new_id("");
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(name));
    bson_t *upd = BCON_NEW("$set", "{", "token", BCON_UTF8(token), "}");
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    bool ok = mongoc_collection_update_one(h.coll, sel, upd, opts, NULL, &e);
    close_coll(&h);
    bson_destroy(opts);
    bson_destroy(upd);
    bson_destroy(sel);
    free(token);
    return ok ? ST_OK : map_error(&e, "stamp");
}

store_status store_stamp_read(const char *name, char *buf, size_t len)
{
    cJSON *stamp = NULL;
    store_status st = store_get(COLL_STAMPS, name, &stamp);
    const char *token = st == ST_OK ? json_get_str(stamp, "token") : NULL;
    snprintf(buf, len, "%s", token ? token : "");
    cJSON_Delete(stamp);
    return st == ST_NOT_FOUND ? ST_OK : st;
}

static store_status delete_one(const char *coll, const bson_t *sel)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_error_t e;
    bool ok = mongoc_collection_delete_one(h.coll, sel, NULL, NULL, &e);
    close_coll(&h);
    return ok ? ST_OK : map_error(&e, "delete");
}

store_status store_delete(const char *coll, const char *id)
{
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id));
    store_status st = delete_one(coll, sel);
    bson_destroy(sel);
    return st;
}

store_status store_count(const char *coll, bson_t *filter, int64_t *count)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(h.coll, filter, NULL, NULL, NULL, &e);
    close_coll(&h);
    if (n < 0) return map_error(&e, "count");
    *count = n;
    return ST_OK;
}

/* A page in _id order: each of at most limit documents strictly after after_id
 * goes to each() (without the top-level members omit names, separated by
 * commas, unless NULL); *more says
 * whether another follows. */
static store_status list_each(const char *coll, bson_t *filter, const char *after_id, bool desc, int limit,
                              const char *omit, void (*each)(const bson_t *doc, void *ctx), void *ctx, bool *more)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t merged = BSON_INITIALIZER;
    if (after_id) {
        /* the cursor's bound joins any _id condition the filter has (one _id key);
         * a bound of the filter in the cursor's direction is looser (the pages
         * began inside it) and gives way: a document cannot hold one key twice */
        bson_t sub;
        bson_iter_t it, ops;
        const char *op = desc ? "$lt" : "$gt";
        BSON_APPEND_DOCUMENT_BEGIN(&merged, "_id", &sub);
        BSON_APPEND_UTF8(&sub, op, after_id);
        if (bson_iter_init_find(&it, filter, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &ops))
            while (bson_iter_next(&ops))
                if (strcmp(bson_iter_key(&ops), op) != 0) bson_append_iter(&sub, NULL, 0, &ops);
        bson_append_document_end(&merged, &sub);
        if (bson_iter_init(&it, filter))
            while (bson_iter_next(&it))
                if (strcmp(bson_iter_key(&it), "_id") != 0) bson_append_iter(&merged, NULL, 0, &it);
        filter = &merged;
    }
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(desc ? -1 : 1), "}", "limit", BCON_INT64(limit + 1));
    omit_members(opts, omit);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    int n = 0;
    *more = false;
    while (mongoc_cursor_next(cur, &d)) {
        if (n == limit) {
            *more = true;
            break;
        }
        each(d, ctx);
        n++;
    }
    bson_error_t e;
    store_status st = ST_OK;
    if (mongoc_cursor_error(cur, &e)) st = map_error(&e, "list");
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&merged);
    close_coll(&h);
    return st;
}

static void add_item(const bson_t *doc, void *arr)
{
    cJSON_AddItemToArray(arr, bson_to_api_json(doc));
}

store_status store_list(const char *coll, bson_t *filter, const char *after_id, bool desc, int limit, cJSON **items,
                        bool *more)
{
    cJSON *arr = cJSON_CreateArray();
    store_status st = list_each(coll, filter, after_id, desc, limit, NULL, add_item, arr, more);
    if (st != ST_OK) {
        cJSON_Delete(arr);
        return st;
    }
    *items = arr;
    return ST_OK;
}

typedef struct {
    strbuf *out;
    char *last_id;
    int n;
} text_page;

static void add_text(const bson_t *doc, void *ctx)
{
    text_page *p = ctx;
    if (p->n++) sb_puts(p->out, ",");
    bson_write_api_json(doc, p->out);
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)) {
        free(p->last_id);
        p->last_id = xstrdup(bson_iter_utf8(&it, NULL));
    }
}

store_status store_list_text(const char *coll, bson_t *filter, const char *after_id, bool desc, int limit,
                             strbuf *items, char **last_id, bool *more)
{
    text_page p = {.out = items};
    store_status st = list_each(coll, filter, after_id, desc, limit, NULL, add_text, &p, more);
    if (st != ST_OK) {
        free(p.last_id);
        p.last_id = NULL;
    }
    *last_id = p.last_id;
    return st;
}

store_status store_list_all(const char *coll, cJSON **out)
{
    return store_list_all_omit(coll, NULL, out);
}

/* A scan's page: one query, streamed by the driver in batches. Large, because
 * an embedded database without a pushed-down sort (FerretDB) reads and sorts the
 * whole range again for every page. */
enum { SCAN_PAGE = 1000 };

typedef struct {
    void (*each)(const bson_t *doc, void *ctx);
    void *ctx;
    char *last_id;
} scan_state;

static void scan_one(const bson_t *doc, void *p)
{
    scan_state *s = p;
    s->each(doc, s->ctx);
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it)) {
        free(s->last_id);
        s->last_id = xstrdup(bson_iter_utf8(&it, NULL));
    }
}

store_status store_scan(const char *coll, const bson_t *filter, const char *omit, bool desc,
                        void (*each)(const bson_t *doc, void *ctx), void *ctx)
{
    scan_state s = {.each = each, .ctx = ctx};
    char *after = NULL;
    store_status st;
    for (;;) {
        bson_t f;
        bson_copy_to(filter, &f);
        bool more = false;
        st = list_each(coll, &f, after, desc, SCAN_PAGE, omit, scan_one, &s, &more);
        bson_destroy(&f);
        free(after);
        after = s.last_id;
        s.last_id = NULL;
        if (st != ST_OK || !more || !after) break;
    }
    free(after);
    return st;
}

store_status store_list_all_omit(const char *coll, const char *omit, cJSON **out)
{
    cJSON *all = cJSON_CreateArray();
    bson_t filter = BSON_INITIALIZER;
    store_status st = store_scan(coll, &filter, omit, false, add_item, all);
    bson_destroy(&filter);
    if (st != ST_OK) {
        cJSON_Delete(all);
        return st;
    }
    *out = all;
    return ST_OK;
}

store_status store_put_chunks(const char *id, const unsigned char *data, size_t len, size_t chunk)
{
    handle h;
    if (!open_coll(COLL_DOCUMENT_CHUNKS, &h)) return ST_UNAVAILABLE;
    store_status st = ST_OK;
    for (size_t off = 0, n = 0; off < len && st == ST_OK; off += chunk, n++) {
        if (past_deadline(COLL_DOCUMENT_CHUNKS)) {
            st = ST_UNAVAILABLE;
            break;
        }
        size_t part = len - off < chunk ? len - off : chunk;
        char key[128];
        snprintf(key, sizeof key, "%s:%06zu", id, n);
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&d, "_id", key);
        BSON_APPEND_UTF8(&d, "document_id", id);
        BSON_APPEND_INT64(&d, "n", (int64_t)n);
        BSON_APPEND_BINARY(&d, "data", BSON_SUBTYPE_BINARY, data + off, (uint32_t)part);
        bson_error_t e;
        /* A retried upload of the same id rewrites the same keys: upsert. */
        bson_t *sel = BCON_NEW("_id", BCON_UTF8(key));
        bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
        if (!mongoc_collection_replace_one(h.coll, sel, &d, opts, NULL, &e)) st = map_error(&e, "chunk write");
        bson_destroy(opts);
        bson_destroy(sel);
        bson_destroy(&d);
    }
    close_coll(&h);
    return st;
}

store_status store_read_chunks(const char *id, bool (*fn)(const unsigned char *, size_t, void *), void *ctx,
                               size_t *total)
{
    handle h;
    if (!open_coll(COLL_DOCUMENT_CHUNKS, &h)) return ST_UNAVAILABLE;
    bson_t *filter = BCON_NEW("document_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("sort", "{", "n", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    store_status st = ST_OK;
    int64_t expect = 0;
    *total = 0;
    while (mongoc_cursor_next(cur, &d)) {
        bson_iter_t it;
        const uint8_t *bin = NULL;
        uint32_t blen = 0;
        bson_subtype_t sub;
        int64_t n = -1;
        if (bson_iter_init_find(&it, d, "n")) n = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, d, "data") && BSON_ITER_HOLDS_BINARY(&it)) bson_iter_binary(&it, &sub, &blen, &bin);
        if (n != expect++ || !bin) {
            log_msgf(LOG_ERROR, "document %s: chunk %lld missing or damaged", id, (long long)(expect - 1));
            st = ST_ERROR;
            break;
        }
        *total += blen;
        if (!fn(bin, blen, ctx)) break;
    }
    bson_error_t e;
    if (st == ST_OK && mongoc_cursor_error(cur, &e)) st = map_error(&e, "chunk read");
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    close_coll(&h);
    return st;
}

store_status store_delete_chunks(const char *id)
{
    handle h;
    if (!open_coll(COLL_DOCUMENT_CHUNKS, &h)) return ST_UNAVAILABLE;
    bson_t *filter = BCON_NEW("document_id", BCON_UTF8(id));
    bson_error_t e;
    bool ok = mongoc_collection_delete_many(h.coll, filter, NULL, NULL, &e);
    bson_destroy(filter);
    close_coll(&h);
    return ok ? ST_OK : map_error(&e, "chunk delete");
}

/* ---- writes: claim, apply, record (see store.h) ---------------------------- */

static bool exit_after_apply;
static bool (*event_filter)(const cJSON *record);
static int64_t claim_lease_ms = 30000;
static __thread int64_t busy_wait_ms;
enum { BUSY_ANSWER_MARGIN_MS = 250 };

void store_set_event_filter(bool (*emits)(const cJSON *record))
{
    event_filter = emits;
}

void store_set_exit_after_apply(bool on)
{
    exit_after_apply = on;
}

void store_set_claim_lease(int64_t lease_ms)
{
    claim_lease_ms = lease_ms;
}

int64_t store_busy_wait_ms(void)
{
    return busy_wait_ms;
}

/* The claim's key: one per entity version. */
static void claim_key(char *buf, size_t n, const char *type, const char *id, int64_t version)
{
    snprintf(buf, n, "%s/%s/%lld", type, id, (long long)version);
}

static const char *claim_record_id(const cJSON *claim)
{
    const char *id = json_get_str(json_get(claim, "record"), "id");
    return id ? id : "";
}

/* Deletes this claim — only while its key still holds it: once a leftover is
 * removed, a writer may claim the version again with its own record, and the
 * recovery sweep or another writer must not remove that one. */
static store_status delete_claim(const cJSON *claim)
{
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(json_get_str(claim, "id")), "record.id", BCON_UTF8(claim_record_id(claim)));
    store_status st = delete_one(COLL_CLAIMS, sel);
    bson_destroy(sel);
    return st;
}

static int64_t claim_version(const cJSON *claim)
{
    return (int64_t)cJSON_GetNumberValue(json_get(json_get(claim, "record"), "entity_version"));
}

/* Step 3: the audit record, and the queued event of a change that emits one.
 * Both are keyed by the audit record's id, so recording twice (the writer and
 * the recovery sweep) is harmless. The event is queued after the record: a
 * queued event always has its audit record. */
static store_status record_claim(const cJSON *claim)
{
    const cJSON *rec = json_get(claim, "record");
    store_status st = insert_doc(COLL_AUDIT, rec);
    if (st == ST_DUPLICATE) st = ST_OK;
    if (st == ST_OK && cJSON_IsTrue(json_get(claim, "emits"))) {
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "id", json_get_str(rec, "id"));
        cJSON_AddNumberToObject(q, "queued_ms", (double)now_ms());
        st = insert_doc(COLL_EVENT_QUEUE, q);
        if (st == ST_DUPLICATE) st = ST_OK;
        cJSON_Delete(q);
    }
    return st;
}

static store_status claim_applied(const cJSON *claim, bool *applied);

/* How long a writer waits for another writer's claim to settle: a writer in
 * flight finishes in milliseconds, but under load (a busy database, many
 * writers of one resource) it can take far longer than a fixed few hundred ms.
 * A request waits until shortly before its deadline (time left to answer); a
 * background thread, without one, up to a second. Then ST_BUSY (503). */
static bool keep_waiting(int64_t started, int tries)
{
    int64_t now = mono_ms();
    if (deadline_ms) return now + 20 + BUSY_ANSWER_MARGIN_MS < deadline_ms;
    return tries < 4 || now - started < 1000;
}

/* Another claim holds the version we want. When its outcome can be decided from
 * the document, decide it: applied → the caller's version is stale (or, for a
 * create, the id exists); not applied and past its lease → the leftover is
 * removed and the caller claims again (ST_OK). A claim still in its lease whose
 * change is not visible yet is a writer in flight: wait briefly for it, then
 * ST_BUSY (busy_wait_ms: until its lease ends) — never a false "stale". */
static store_status settle_conflict(const char *key, int64_t expect)
{
    int64_t started = mono_ms();
    for (int tries = 0;; tries++) {
        cJSON *other = NULL;
        store_status st = store_get(COLL_CLAIMS, key, &other);
        if (st == ST_NOT_FOUND) return ST_OK; /* settled meanwhile: claim again */
        if (st != ST_OK) return st;
        bool applied = false;
        st = claim_applied(other, &applied);
        int64_t left = (int64_t)cJSON_GetNumberValue(json_get(other, "claimed_ms")) + claim_lease_ms - now_ms();
        if (st == ST_OK && applied) {
            cJSON_Delete(other);
            return expect == 0 ? ST_DUPLICATE : ST_STALE;
        }
        if (st == ST_OK && left <= 0) {
            /* No write can still be in flight (the lease exceeds the socket
             * timeout): not applied, the version is free again. */
            st = delete_claim(other);
            if (st == ST_OK) log_msgf(LOG_INFO, "leftover claim %s: not applied, removed", key);
            cJSON_Delete(other);
            return st;
        }
        cJSON_Delete(other);
        if (st != ST_OK) return st;
        if (!keep_waiting(started, tries)) {
            busy_wait_ms = left;
            return ST_BUSY;
        }
        usleep(tries < 4 ? 5000 : 20000);
    }
}

store_status store_write(const char *coll, const char *id, int64_t expect, const cJSON *doc, const cJSON *record)
{
    char key[512];
    claim_key(key, sizeof key, json_get_str(record, "entity_type"), id,
              (int64_t)cJSON_GetNumberValue(json_get(record, "entity_version")));
    cJSON *claim = cJSON_CreateObject();
    cJSON_AddStringToObject(claim, "id", key);
    cJSON_AddStringToObject(claim, "collection", coll);
    cJSON_AddNumberToObject(claim, "claimed_ms", (double)now_ms());
    cJSON_AddBoolToObject(claim, "emits", event_filter && event_filter(record));
    cJSON_AddItemToObject(claim, "record", cJSON_Duplicate(record, 1));
    busy_wait_ms = 0;

    /* 1. claim */
    store_status st;
    for (int tries = 0;; tries++) {
        st = insert_doc(COLL_CLAIMS, claim);
        if (st != ST_DUPLICATE) break;
        st = tries < 2 ? settle_conflict(key, expect) : (expect == 0 ? ST_DUPLICATE : ST_STALE);
        if (st != ST_OK) goto done;
    }
    if (st != ST_OK) goto done;

    /* 2. apply: the commit point */
    st = expect == 0 ? insert_doc(coll, doc) : versioned_apply(coll, id, expect, doc);
    if (st == ST_STALE || st == ST_DUPLICATE || st == ST_NOT_FOUND) {
        /* Certainly not applied: give the version back. If even that fails, the
         * recovery sweep sees the unchanged document and removes the claim. */
        delete_claim(claim);
        goto done;
    }
    if (st != ST_OK) {
        /* The outcome is unknown (the database went away or timed out mid-write:
         * the change may have been applied, or may still be). If it is visibly
         * applied, record it now; otherwise the claim stays for the recovery
         * sweep, which settles it after the lease, when no write can still be
         * in flight. Removing it here could leave an applied change unaudited. */
        bool applied = false;
        if (claim_applied(claim, &applied) != ST_OK || !applied) goto done;
        log_msgf(LOG_WARN, "write %s: outcome unknown at first, found applied", key);
        st = ST_OK;
    }
    if (exit_after_apply) {
        log_msgf(LOG_WARN, "test fault: exiting after applying %s, before recording it", key);
        _exit(99);
    }

    /* 3. record, then the claim has served */
    if (record_claim(claim) != ST_OK || delete_claim(claim) != ST_OK)
        log_msgf(LOG_WARN, "write %s applied, not recorded yet; the recovery sweep will", key);
done:
    cJSON_Delete(claim);
    return st;
}

/* Was the claimed change applied? Looks at the document now. */
static store_status claim_applied(const cJSON *claim, bool *applied)
{
    const cJSON *rec = json_get(claim, "record");
    const char *coll = json_get_str(claim, "collection"), *id = json_get_str(rec, "entity_id");
    const char *action = json_get_str(rec, "action"), *type = json_get_str(rec, "entity_type");
    int64_t version = claim_version(claim);
    if (!coll || !id || !action || !type) return ST_ERROR;
    cJSON *doc = NULL;
    store_status st = store_get(coll, id, &doc);
    if (st != ST_OK && st != ST_NOT_FOUND) return st;
    int64_t now_version = doc ? (int64_t)cJSON_GetNumberValue(json_get(doc, "version")) : 0;
    cJSON_Delete(doc);
    if (strcmp(action, "delete") == 0 ? !doc || now_version >= version : now_version >= version) {
        /* A create of a client-chosen id that failed leaves its version claimed,
         * and a retry creates the document at the next one: for a create, only
         * exactly our version, or a later version that is not a create, proves it. */
        if (strcmp(action, "create") != 0 || now_version == version) {
            *applied = true;
            return ST_OK;
        }
    }
    if (doc && now_version < version) {
        *applied = false; /* the document is still before our version */
        return ST_OK;
    }
    /* The document is gone, or past our version: the next version's record
     * decides — it could only be claimed once ours was applied, unless it is a
     * create (then ours never existed). */
    char next_key[512];
    claim_key(next_key, sizeof next_key, type, id, version + 1);
    cJSON *next = NULL;
    st = store_get(COLL_CLAIMS, next_key, &next);
    const char *next_action = next ? json_get_str(json_get(next, "record"), "action") : NULL;
    if (st == ST_NOT_FOUND) {
        bson_t *q = BCON_NEW("entity_type", BCON_UTF8(type), "entity_id", BCON_UTF8(id), "entity_version",
                             BCON_INT64(version + 1));
        st = store_find(COLL_AUDIT, q, NULL, 1, &next);
        bson_destroy(q);
        if (st == ST_OK && next && next->child) next_action = json_get_str(next->child, "action");
    }
    if (st == ST_OK) *applied = next_action ? strcmp(next_action, "create") != 0 : false;
    cJSON_Delete(next);
    return st;
}

store_status store_recover_claims(int64_t lease_ms, int *settled)
{
    *settled = 0;
    bson_t all = BSON_INITIALIZER;
    cJSON *claims = NULL;
    store_status st = store_find(COLL_CLAIMS, &all, "claimed_ms", 200, &claims);
    bson_destroy(&all);
    int64_t now = now_ms();
    for (cJSON *c = claims ? claims->child : NULL; c && st == ST_OK; c = c->next) {
        if ((int64_t)cJSON_GetNumberValue(json_get(c, "claimed_ms")) > now - lease_ms) break; /* oldest first */
        bool applied = false;
        st = claim_applied(c, &applied);
        if (st != ST_OK) break;
        const char *key = json_get_str(c, "id");
        if (applied) {
            /* Applied, seen after the document was read: if its key still holds
             * this claim, the change was this claim's — a writer applies the
             * version again only after removing the claim as a leftover. */
            cJSON *held = NULL;
            st = store_get(COLL_CLAIMS, key, &held);
            bool same = st == ST_OK && strcmp(claim_record_id(held), claim_record_id(c)) == 0;
            cJSON_Delete(held);
            if (st == ST_NOT_FOUND || (st == ST_OK && !same)) { /* settled by a writer meanwhile */
                st = ST_OK;
                continue;
            }
            if (st == ST_OK) st = record_claim(c);
        }
        if (st == ST_OK) st = delete_claim(c);
        if (st == ST_OK) {
            (*settled)++;
            log_msgf(LOG_INFO, "recovered claim %s: %s", key, applied ? "applied, recorded" : "not applied, removed");
        }
    }
    cJSON_Delete(claims);
    return st;
}

store_status store_last_version(const char *entity_type, const char *id, int64_t *version)
{
    handle h;
    if (!open_coll(COLL_AUDIT, &h)) return ST_UNAVAILABLE;
    bson_t *filter = BCON_NEW("entity_type", BCON_UTF8(entity_type), "entity_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("sort", "{", "entity_version", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "entity_version", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, opts, NULL);
    const bson_t *d;
    *version = 0;
    if (mongoc_cursor_next(cur, &d)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, d, "entity_version")) *version = bson_iter_as_int64(&it);
    }
    bson_error_t e;
    store_status st = mongoc_cursor_error(cur, &e) ? map_error(&e, "last version") : ST_OK;
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    close_coll(&h);
    return st;
}

store_status store_insert_many(const char *coll, const cJSON *docs)
{
    if (cJSON_GetArraySize(docs) == 0) return ST_OK;
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(h.coll, opts);
    for (const cJSON *d = docs->child; d; d = d->next) {
        bson_t b = BSON_INITIALIZER;
        if (to_stored(d, &b)) mongoc_bulk_operation_insert(bulk, &b);
        bson_destroy(&b);
    }
    bson_t reply;
    bson_error_t e;
    store_status st = ST_OK;
    if (!mongoc_bulk_operation_execute(bulk, &reply, &e)) {
        /* Duplicates (a repeated fan-out) are fine; anything else is an error. */
        bool only_dups = false;
        bson_iter_t it, arr;
        if (bson_iter_init_find(&it, &reply, "writeErrors") && bson_iter_recurse(&it, &arr)) {
            only_dups = true;
            while (bson_iter_next(&arr)) {
                bson_iter_t er;
                if (!bson_iter_recurse(&arr, &er) || !bson_iter_find(&er, "code") || bson_iter_as_int64(&er) != 11000)
                    only_dups = false;
            }
        }
        if (!only_dups) st = map_error(&e, "bulk insert");
    }
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(opts);
    close_coll(&h);
    return st;
}

store_status store_update_many(const char *coll, const cJSON *ids, const cJSON *sets)
{
    if (cJSON_GetArraySize(ids) == 0) return ST_OK;
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(h.coll, opts);
    const cJSON *set = sets ? sets->child : NULL;
    for (const cJSON *id = ids->child; id && set; id = id->next, set = set->next) {
        bson_t *sel = BCON_NEW("_id", BCON_UTF8(id->valuestring));
        bson_t s = BSON_INITIALIZER, upd = BSON_INITIALIZER;
        json_to_bson(set, &s);
        BSON_APPEND_DOCUMENT(&upd, "$set", &s);
        mongoc_bulk_operation_update_one_with_opts(bulk, sel, &upd, NULL, NULL);
        bson_destroy(&upd);
        bson_destroy(&s);
        bson_destroy(sel);
    }
    bson_t reply;
    bson_error_t e;
    store_status st = mongoc_bulk_operation_execute(bulk, &reply, &e) ? ST_OK : map_error(&e, "bulk update");
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(opts);
    close_coll(&h);
    return st;
}

store_status store_delete_ids(const char *coll, const cJSON *ids)
{
    if (cJSON_GetArraySize(ids) == 0) return ST_OK;
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t filter = BSON_INITIALIZER, in, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    int i = 0;
    for (const cJSON *id = ids->child; id; id = id->next, i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        BSON_APPEND_UTF8(&arr, k, id->valuestring);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    bson_error_t e;
    bool ok = mongoc_collection_delete_many(h.coll, &filter, NULL, NULL, &e);
    close_coll(&h);
    bson_destroy(&filter);
    return ok ? ST_OK : map_error(&e, "delete ids");
}

store_status store_find(const char *coll, bson_t *filter, const char *sort_field, int limit, cJSON **out)
{
    handle h;
    if (!open_coll(coll, &h)) return ST_UNAVAILABLE;
    bson_t opts = BSON_INITIALIZER, sort;
    if (sort_field) {
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, sort_field, 1);
        bson_append_document_end(&opts, &sort);
    }
    BSON_APPEND_INT64(&opts, "limit", limit);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h.coll, filter, &opts, NULL);
    const bson_t *d;
    cJSON *arr = cJSON_CreateArray();
    while (mongoc_cursor_next(cur, &d)) cJSON_AddItemToArray(arr, bson_to_api_json(d));
    bson_error_t e;
    store_status st = mongoc_cursor_error(cur, &e) ? map_error(&e, "find") : ST_OK;
    mongoc_cursor_destroy(cur);
    close_coll(&h);
    bson_destroy(&opts);
    if (st != ST_OK) {
        cJSON_Delete(arr);
        return st;
    }
    *out = arr;
    return ST_OK;
}
