/* The ceiling for bench/registry: the database work of subreg's authenticated
 * registry endpoints done straight with mongo-c-driver — pooled, one thread per
 * connection, the same documents and indexes — and nothing else (no HTTP, no
 * JSON, no tokens, no validation).
 *   get:    find the subprocessor by _id
 *   list:   {status: "active"} sorted by _id, 51 documents (a page of 50 and
 *           whether more exist)
 *   create: the write protocol of store.h — claim insert, document insert, audit
 *           insert, event_queue insert, claim delete
 *   patch:  find by _id, then the same protocol with a replace on {_id, version}
 * The writes go to ceil_-prefixed collections (with subreg's indexes), so that
 * the service running beside it sees none of them; get and list read the
 * service's own subprocessors.
 * Usage: registry_ceiling URI DB OP SECONDS THREADS
 * Prints one line: OP requests/s p50_ms p99_ms */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mongoc_client_pool_t *pool;
static const char *db_name, *op;
static double until_s;
static bson_t *sp_template, *audit_template;
static char **ids;
static int n_ids;

typedef struct {
    int n, cap;
    double *lat_ms;
    int index;
} result;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const bson_error_t *e)
{
    fprintf(stderr, "registry_ceiling: %s: %s\n", what, e ? e->message : "");
    exit(1);
}

/* A copy of tmpl with _id (and the members named in set, strings or int64). */
static bson_t *copy_with(const bson_t *tmpl, const char *id, const char *k1, const char *v1, const char *k2,
                         int64_t v2)
{
    bson_t *b = bson_new();
    BSON_APPEND_UTF8(b, "_id", id);
    bson_iter_t it;
    bson_iter_init(&it, tmpl);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "_id") || (k1 && !strcmp(k, k1)) || (k2 && !strcmp(k, k2))) continue;
        bson_append_iter(b, k, -1, &it);
    }
    if (k1) BSON_APPEND_UTF8(b, k1, v1);
    if (k2) BSON_APPEND_INT64(b, k2, v2);
    return b;
}

static bool insert(mongoc_client_t *c, const char *coll, const bson_t *doc)
{
    mongoc_collection_t *col = mongoc_client_get_collection(c, db_name, coll);
    bson_error_t e;
    bool ok = mongoc_collection_insert_one(col, doc, NULL, NULL, &e);
    mongoc_collection_destroy(col);
    if (!ok) die("insert", &e);
    return ok;
}

static bool delete_id(mongoc_client_t *c, const char *coll, const char *id)
{
    mongoc_collection_t *col = mongoc_client_get_collection(c, db_name, coll);
    bson_t *sel = BCON_NEW("_id", BCON_UTF8(id));
    bson_error_t e;
    bool ok = mongoc_collection_delete_one(col, sel, NULL, NULL, &e);
    bson_destroy(sel);
    mongoc_collection_destroy(col);
    if (!ok) die("delete", &e);
    return ok;
}

static int64_t find_version(mongoc_client_t *c, const char *coll, const char *id)
{
    mongoc_collection_t *col = mongoc_client_get_collection(c, db_name, coll);
    bson_t *q = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, q, NULL, NULL);
    const bson_t *d;
    int64_t v = -1;
    if (mongoc_cursor_next(cur, &d)) {
        bson_iter_t it;
        v = bson_iter_init_find(&it, d, "version") ? bson_iter_as_int64(&it) : 0;
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) die("find", &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(q);
    mongoc_collection_destroy(col);
    return v;
}

/* The protocol of store_write: claim, apply, record, release. */
static void versioned_write(mongoc_client_t *c, int t, long n, const char *id, int64_t expect)
{
    char key[160], aid[64];
    snprintf(key, sizeof key, "subprocessor/%s/%lld", id, (long long)(expect + 1));
    snprintf(aid, sizeof aid, "au_ceil_%d_%ld_%lld", t, n, (long long)now_s());
    bson_t *claim = BCON_NEW("_id", BCON_UTF8(key), "collection", BCON_UTF8("ceil_subprocessors"), "claimed_ms",
                             BCON_DOUBLE(now_s() * 1000), "emits", BCON_BOOL(true));
    BSON_APPEND_DOCUMENT(claim, "record", audit_template);
    insert(c, "ceil_claims", claim);
    bson_t *doc = copy_with(sp_template, id, NULL, NULL, "version", expect + 1);
    if (expect == 0) {
        insert(c, "ceil_subprocessors", doc);
    } else {
        mongoc_collection_t *col = mongoc_client_get_collection(c, db_name, "ceil_subprocessors");
        bson_t *sel = BCON_NEW("_id", BCON_UTF8(id), "version", BCON_INT64(expect));
        bson_error_t e;
        if (!mongoc_collection_replace_one(col, sel, doc, NULL, NULL, &e)) die("replace", &e);
        bson_destroy(sel);
        mongoc_collection_destroy(col);
    }
    bson_t *audit = copy_with(audit_template, aid, "entity_id", id, "entity_version", expect + 1);
    insert(c, "ceil_audit", audit);
    bson_t *ev = BCON_NEW("_id", BCON_UTF8(aid), "queued_ms", BCON_DOUBLE(now_s() * 1000));
    insert(c, "ceil_event_queue", ev);
    delete_id(c, "ceil_claims", key);
    bson_destroy(ev);
    bson_destroy(audit);
    bson_destroy(doc);
    bson_destroy(claim);
}

static void *worker(void *arg)
{
    result *r = arg;
    mongoc_client_t *c = mongoc_client_pool_pop(pool);
    mongoc_collection_t *sps = mongoc_client_get_collection(c, db_name, "subprocessors");
    char mine[4][64];
    int64_t versions[4] = {0};
    if (!strcmp(op, "patch")) {
        for (int k = 0; k < 4; k++) {
            snprintf(mine[k], sizeof mine[k], "sp_ceil_patch_%d_%d_%lld", r->index, k, (long long)(now_s() * 1e6));
            versioned_write(c, r->index, -k - 1, mine[k], 0);
            versions[k] = 1;
        }
    }
    unsigned seed = (unsigned)r->index * 7919u + 1;
    for (long n = 0; now_s() < until_s; n++) {
        double t0 = now_s();
        if (!strcmp(op, "get")) {
            bson_t *q = BCON_NEW("_id", BCON_UTF8(ids[rand_r(&seed) % n_ids]));
            mongoc_cursor_t *cur = mongoc_collection_find_with_opts(sps, q, NULL, NULL);
            const bson_t *d;
            if (!mongoc_cursor_next(cur, &d)) die("get: not found", NULL);
            mongoc_cursor_destroy(cur);
            bson_destroy(q);
        } else if (!strcmp(op, "list")) {
            bson_t *q = BCON_NEW("status", BCON_UTF8("active"));
            bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(51));
            mongoc_cursor_t *cur = mongoc_collection_find_with_opts(sps, q, opts, NULL);
            const bson_t *d;
            while (mongoc_cursor_next(cur, &d)) {
            }
            bson_error_t e;
            if (mongoc_cursor_error(cur, &e)) die("list", &e);
            mongoc_cursor_destroy(cur);
            bson_destroy(opts);
            bson_destroy(q);
        } else if (!strcmp(op, "create")) {
            char id[64];
            snprintf(id, sizeof id, "sp_ceil_%d_%ld_%lld", r->index, n, (long long)(t0 * 1e6));
            versioned_write(c, r->index, n, id, 0);
        } else {
            int k = (int)(n % 4);
            int64_t v = find_version(c, "ceil_subprocessors", mine[k]);
            if (v != versions[k]) die("patch: version moved", NULL);
            versioned_write(c, r->index, n, mine[k], v);
            versions[k] = v + 1;
        }
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 4096;
            r->lat_ms = realloc(r->lat_ms, (size_t)r->cap * sizeof *r->lat_ms);
        }
        r->lat_ms[r->n++] = (now_s() - t0) * 1000;
    }
    mongoc_collection_destroy(sps);
    mongoc_client_pool_push(pool, c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bson_t *find_template(mongoc_client_t *c, const char *coll, const bson_t *q)
{
    mongoc_collection_t *col = mongoc_client_get_collection(c, db_name, coll);
    bson_t *one = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, q, one, NULL);
    bson_destroy(one);
    const bson_t *d;
    bson_t *out = mongoc_cursor_next(cur, &d) ? bson_copy(d) : NULL;
    bson_error_t e;
    bool failed = mongoc_cursor_error(cur, &e);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    if (!out) die(coll, failed ? &e : NULL);
    return out;
}

static void create_index(mongoc_client_t *c, const char *coll, const char *name, bson_t *keys, bool unique)
{
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(coll), "indexes", "[", "{", "key", BCON_DOCUMENT(keys), "name",
                           BCON_UTF8(name), "unique", BCON_BOOL(unique), "}", "]");
    mongoc_database_t *db = mongoc_client_get_database(c, db_name);
    bson_error_t e;
    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &e)) die("createIndexes", &e);
    mongoc_database_destroy(db);
    bson_destroy(cmd);
    bson_destroy(keys);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: registry_ceiling URI DB get|list|create|patch SECONDS THREADS\n");
        return 2;
    }
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL); /* the embedded databases lack endSessions: quiet */
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &e);
    if (!uri) die("uri", &e);
    db_name = argv[2];
    op = argv[3];
    double secs = atof(argv[4]);
    int threads = atoi(argv[5]);
    pool = mongoc_client_pool_new(uri);
    mongoc_client_pool_max_size(pool, (uint32_t)threads + 1);

    mongoc_client_t *c = mongoc_client_pool_pop(pool);
    bson_t empty = BSON_INITIALIZER;
    sp_template = find_template(c, "subprocessors", &empty);
    bson_t *aq = BCON_NEW("entity_type", BCON_UTF8("subprocessor"));
    audit_template = find_template(c, "audit", aq);
    bson_destroy(aq);
    mongoc_collection_t *sps = mongoc_client_get_collection(c, db_name, "subprocessors");
    bson_t *proj = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(sps, &empty, proj, NULL);
    const bson_t *d;
    while (mongoc_cursor_next(cur, &d)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, d, "_id")) continue;
        ids = realloc(ids, (size_t)(n_ids + 1) * sizeof *ids);
        ids[n_ids++] = strdup(bson_iter_utf8(&it, NULL));
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(proj);
    mongoc_collection_destroy(sps);
    /* subreg's indexes on the collections the writes go to (store_migrate) */
    create_index(c, "ceil_audit", "entity_type_1_entity_id_1_entity_version_1",
                 BCON_NEW("entity_type", BCON_INT32(1), "entity_id", BCON_INT32(1), "entity_version", BCON_INT32(1)),
                 true);
    create_index(c, "ceil_audit", "entity_id_1", BCON_NEW("entity_id", BCON_INT32(1)), false);
    create_index(c, "ceil_audit", "actor_1", BCON_NEW("actor", BCON_INT32(1)), false);
    create_index(c, "ceil_audit", "at_1", BCON_NEW("at", BCON_INT32(1)), false);
    const char *sp_idx[] = {"status", "category", "role", "locations.country", "hq_country"};
    for (int i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_1", sp_idx[i]);
        create_index(c, "ceil_subprocessors", name, BCON_NEW(sp_idx[i], BCON_INT32(1)), false);
    }
    mongoc_client_pool_push(pool, c);
    if (n_ids == 0) die("no subprocessors", NULL);

    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    result *res = calloc((size_t)threads, sizeof *res);
    double t0 = now_s();
    until_s = t0 + secs;
    for (int i = 0; i < threads; i++) {
        res[i].index = i;
        pthread_create(&tid[i], NULL, worker, &res[i]);
    }
    int total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        total += res[i].n;
    }
    double elapsed = now_s() - t0;
    double *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    int k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, res[i].lat_ms, (size_t)res[i].n * sizeof *all);
        k += res[i].n;
        free(res[i].lat_ms);
    }
    qsort(all, (size_t)total, sizeof *all, cmp_double);
    printf("%s %.1f %.2f %.2f\n", op, total / elapsed, total ? all[total / 2] : 0, total ? all[(int)(total * 0.99)] : 0);
    free(all);
    free(res);
    free(tid);
    for (int i = 0; i < n_ids; i++) free(ids[i]);
    free(ids);
    bson_destroy(sp_template);
    bson_destroy(audit_template);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return 0;
}
