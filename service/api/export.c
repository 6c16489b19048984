/* Export and restore: the whole registry and its reference data as one JSON
 * document (GET /v1/export, admin), and `subreg restore FILE`, which takes that
 * document back into an empty database so that every API answer about the
 * registry is byte-for-byte what it was (ids, versions, times, ETags, the
 * public list, the stored PDFs).
 *
 * The document: {"format": "subreg-export", "format_version": 1, "exported_at",
 * "service_version", "collections": {<collection>: [stored documents, internal
 * '_' members included], …}, "document_content": {<document id>: base64url}}.
 * Not in it: the audit trail (it can hold millions of records; a database
 * backup keeps it), webhook subscriptions (their signing secrets never leave
 * the service) and deliveries and events (operational state). A restore writes
 * one audit record per restored document (action "restore"), so the trail of
 * the restored registry begins with the state it was restored in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/api.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/resource.h"
#include "subreg/util.h"

#define EXPORT_FORMAT "subreg-export"
#define EXPORT_FORMAT_VERSION 1
#define CONTENT_CHUNK_BYTES (255 * 1024) /* as documents.c stores them */
#define ACTOR_RESTORE "subreg-restore"
#define EXPORT_EXTRA_DEADLINE_MS 60000

/* What an export holds, in the order a restore writes it (reference data
 * first: the registry refers to it). The descriptor names the audit records'
 * entity type; the seed log has none (bookkeeping of migrate's seeding). */
static const struct {
    const char *collection;
    const resource *res;
} PARTS[] = {
    {COLL_COUNTRIES, &RES_COUNTRY},       {COLL_ADEQUACY, &RES_ADEQUACY},     {COLL_SCC_SETS, &RES_SCC_SET},
    {COLL_SERVICES, &RES_SERVICE},       {COLL_SUBPROCESSORS, &RES_SUBPROCESSOR}, {COLL_AGREEMENTS, &RES_AGREEMENT}, {COLL_TRANSFERS, &RES_TRANSFER},
    {COLL_TOM_DOCUMENTS, &RES_TOM},       {COLL_CUSTOMERS, &RES_CUSTOMER},    {COLL_DOCUMENTS, &RES_DOCUMENT},
    {COLL_PUBLICATIONS, &RES_PUBLICATION}, {COLL_OBJECTIONS, &RES_OBJECTION}, {COLL_SEED_LOG, NULL},
};
#define NPARTS (sizeof PARTS / sizeof PARTS[0])

/* ---- export ------------------------------------------------------------------ */

typedef struct {
    strbuf *out;
    size_t n;
} content_ctx;

static bool add_chunk(const unsigned char *data, size_t len, void *ctx)
{
    content_ctx *c = ctx;
    /* base64url of each chunk joined: chunks are a multiple of 3 bytes but the
     * last, so the pieces join into the base64url of the whole. */
    char *b = b64url_encode(data, len);
    sb_puts(c->out, b);
    free(b);
    c->n += len;
    return true;
}

static store_status write_export(strbuf *out)
{
    char at[32];
    format_rfc3339(now_ms(), at);
    sb_printf(out, "{\"format\":\"%s\",\"format_version\":%d,\"exported_at\":\"%s\",\"service_version\":\"%s\","
                   "\"collections\":{",
              EXPORT_FORMAT, EXPORT_FORMAT_VERSION, at, SUBREG_VERSION);
    cJSON *documents = NULL;
    store_status st = ST_OK;
    for (size_t i = 0; i < NPARTS && st == ST_OK; i++) {
        cJSON *all = NULL;
        st = store_list_all(PARTS[i].collection, &all);
        if (st != ST_OK) break;
        sb_printf(out, "%s\"%s\":[", i ? "," : "", PARTS[i].collection);
        for (const cJSON *d = all->child; d; d = d->next) {
            char *s = json_dump(d);
            sb_printf(out, "%s%s", d == all->child ? "" : ",", s);
            free(s);
        }
        sb_puts(out, "]");
        if (!strcmp(PARTS[i].collection, COLL_DOCUMENTS)) documents = all;
        else cJSON_Delete(all);
    }
    sb_puts(out, "},\"document_content\":{");
    for (const cJSON *d = documents ? documents->child : NULL; d && st == ST_OK; d = d->next) {
        const char *id = json_get_str(d, "id");
        sb_printf(out, "%s\"%s\":\"", d == documents->child ? "" : ",", id);
        content_ctx c = {.out = out};
        size_t total = 0;
        st = store_read_chunks(id, add_chunk, &c, &total);
        /* deleted since the list was read: the export would not restore */
        if (st == ST_OK && total != (size_t)cJSON_GetNumberValue(json_get(d, "size"))) st = ST_STALE;
        sb_puts(out, "\"");
    }
    sb_puts(out, "}}");
    cJSON_Delete(documents);
    return st;
}

static void handle_export(req *r)
{
    if (!req_check_query(r, NULL)) return;
    /* the whole registry is read: a bound for a slow database, not the expected time */
    store_extend_deadline(EXPORT_EXTRA_DEADLINE_MS);
    strbuf out = {0};
    store_status st = write_export(&out);
    if (st == ST_STALE) {
        sb_free(&out);
        respond_problem(r, 409, "conflict", "a stored document changed while the export was read; retry");
        return;
    }
    if (st != ST_OK) {
        sb_free(&out);
        respond_store_error(r, st);
        return;
    }
    char disp[80], day[16];
    format_date(now_ms(), day);
    snprintf(disp, sizeof disp, "attachment; filename=\"subreg-export-%s.json\"", day);
    req_add_header(r, "Content-Disposition", disp);
    respond(r, 200, "application/json", out.data, out.len);
    sb_free(&out);
}

int export_routes(route *out, int cap)
{
    const route rs[] = {
        {"GET", "/v1/export", handle_export, ROLE_ADMIN, NULL, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}

/* ---- restore ----------------------------------------------------------------- */

/* A restore that stopped half-way (the database went away) can be run again
 * with the same file: this marker (in stamps) names the file's hash, and the
 * writes below are all idempotent (inserts that skip what exists). */
#define RESTORE_MARKER "restore"

static bool fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return false;
}

/* The document is an export this version can read; every part an array of
 * objects with a string id. */
static bool check_export(const cJSON *doc, char *err, size_t n)
{
    if (!cJSON_IsObject(doc) || !json_get_str(doc, "format") || strcmp(json_get_str(doc, "format"), EXPORT_FORMAT))
        return fail(err, n, "not a subreg export (\"format\" is not \"%s\")", EXPORT_FORMAT);
    const cJSON *v = json_get(doc, "format_version");
    if (!cJSON_IsNumber(v) || cJSON_GetNumberValue(v) != EXPORT_FORMAT_VERSION)
        return fail(err, n, "unsupported format_version (this service reads version %d)", EXPORT_FORMAT_VERSION);
    const cJSON *colls = json_get(doc, "collections");
    if (!cJSON_IsObject(colls)) return fail(err, n, "\"collections\" is missing");
    for (const cJSON *c = colls->child; c; c = c->next) {
        bool known = false;
        for (size_t i = 0; i < NPARTS; i++) known |= !strcmp(c->string, PARTS[i].collection);
        if (!known) return fail(err, n, "unknown collection \"%s\" in the export", c->string);
        if (!cJSON_IsArray(c)) return fail(err, n, "collection \"%s\" is not an array", c->string);
        bool versioned = false; /* a registry document: its version goes into its restore record */
        for (size_t i = 0; i < NPARTS; i++) versioned |= !strcmp(c->string, PARTS[i].collection) && PARTS[i].res;
        for (const cJSON *d = c->child; d; d = d->next) {
            if (!cJSON_IsObject(d) || !json_get_str(d, "id"))
                return fail(err, n, "a document of \"%s\" is not an object with a string id", c->string);
            const cJSON *ver = json_get(d, "version");
            if (versioned && !(cJSON_IsNumber(ver) && ver->valuedouble >= 1 && ver->valuedouble <= 1e15 &&
                               ver->valuedouble == (double)(int64_t)ver->valuedouble))
                return fail(err, n, "document \"%s\" of \"%s\" has no version (a positive integer)",
                            json_get_str(d, "id"), c->string);
        }
    }
    const cJSON *content = json_get(doc, "document_content");
    if (content && !cJSON_IsObject(content)) return fail(err, n, "\"document_content\" is not an object");
    const cJSON *docs = json_get(colls, COLL_DOCUMENTS);
    for (const cJSON *c = content ? content->child : NULL; c; c = c->next) {
        if (!cJSON_IsString(c)) return fail(err, n, "the content of document \"%s\" is not a string", c->string);
        bool listed = false;
        for (const cJSON *d = docs ? docs->child : NULL; d && !listed; d = d->next)
            listed = !strcmp(json_get_str(d, "id"), c->string);
        if (!listed) return fail(err, n, "content for document \"%s\", which the export does not list", c->string);
        unsigned char *bytes = NULL;
        size_t len = 0;
        bool b64 = b64url_decode(c->valuestring, strlen(c->valuestring), &bytes, &len);
        free(bytes);
        if (!b64) return fail(err, n, "the content of document \"%s\" is not base64url", c->string);
    }
    for (const cJSON *d = docs ? docs->child : NULL; d; d = d->next)
        if (!json_get(content, json_get_str(d, "id")))
            return fail(err, n, "document \"%s\" has no content in the export", json_get_str(d, "id"));
    return true;
}

/* Empty, or holding a restore of this same file that did not finish. */
static bool target_ready(const char *sha, char *err, size_t n)
{
    cJSON *marker = NULL;
    store_status st = store_get(COLL_STAMPS, RESTORE_MARKER, &marker);
    if (st == ST_OK) {
        bool same = !strcmp(json_get_str(marker, "sha256") ? json_get_str(marker, "sha256") : "", sha);
        bool done = cJSON_IsTrue(json_get(marker, "finished"));
        cJSON_Delete(marker);
        if (same && !done) return true;
        return fail(err, n, "the database already holds a restore%s; restore into an empty database",
                    done ? " (finished)" : " of another file");
    }
    if (st != ST_NOT_FOUND) return fail(err, n, "the database is unavailable (%s)", store_status_name(st));
    for (size_t i = 0; i < NPARTS; i++) {
        bson_t all = BSON_INITIALIZER;
        int64_t count = 0;
        st = store_count(PARTS[i].collection, &all, &count);
        bson_destroy(&all);
        if (st != ST_OK) return fail(err, n, "the database is unavailable (%s)", store_status_name(st));
        if (count > 0)
            return fail(err, n,
                        "the database is not empty (\"%s\" holds documents): restore into an empty database, "
                        "before `subreg migrate` seeds it",
                        PARTS[i].collection);
    }
    return true;
}

/* One "restore" audit record per document: the trail of the restored registry
 * starts with the state it was restored in (the unique entity version makes
 * a second run's records duplicates, which are skipped). */
static cJSON *restore_records(const resource *res, const cJSON *docs, const char *at)
{
    cJSON *recs = cJSON_CreateArray();
    const write_origin by = {ACTOR_RESTORE, "restore", 0};
    for (const cJSON *d = docs->child; d; d = d->next)
        cJSON_AddItemToArray(recs, doc_audit_record(res, &by, "restore", json_get_str(d, "id"),
                                                    (int64_t)cJSON_GetNumberValue(json_get(d, "version")), at, NULL, d));
    return recs;
}

static store_status set_marker(const char *sha, bool finished)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", RESTORE_MARKER);
    cJSON_AddStringToObject(m, "sha256", sha);
    store_status st = store_insert(COLL_STAMPS, m);
    if (st == ST_DUPLICATE) st = ST_OK;
    cJSON_Delete(m);
    if (st == ST_OK && finished) {
        cJSON *set = cJSON_CreateObject();
        cJSON_AddTrueToObject(set, "finished");
        st = store_update(COLL_STAMPS, RESTORE_MARKER, set);
        cJSON_Delete(set);
    }
    return st;
}

static store_status restore_content(const cJSON *content)
{
    store_status st = ST_OK;
    for (const cJSON *c = content ? content->child : NULL; c && st == ST_OK; c = c->next) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        const char *s = cJSON_GetStringValue(c);
        if (!b64url_decode(s, strlen(s), &bytes, &len)) return ST_ERROR;
        st = store_put_chunks(c->string, bytes, len, CONTENT_CHUNK_BYTES);
        free(bytes);
    }
    return st;
}

static bool read_all(const char *path, strbuf *out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return false;
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) sb_append(out, buf, got);
    bool ok = !ferror(f);
    if (f != stdin) fclose(f);
    return ok;
}

int export_restore(const char *path)
{
    strbuf text = {0};
    if (!read_all(path, &text)) {
        sb_free(&text);
        fprintf(stderr, "subreg restore: cannot read %s\n", path);
        return 2;
    }
    char err[320], sha[65];
    sha256_hex(text.data ? text.data : "", text.len, sha);
    cJSON *doc = json_parse_strict(text.data ? text.data : "", text.len, err, sizeof err);
    sb_free(&text);
    if (!doc) {
        fprintf(stderr, "subreg restore: %s is not valid JSON: %s\n", path, err);
        return 2;
    }
    int rc = 2;
    if (!check_export(doc, err, sizeof err)) {
        fprintf(stderr, "subreg restore: %s\n", err);
        goto done;
    }
    rc = 1;
    store_status st = store_migrate();
    if (st != ST_OK) {
        fprintf(stderr, "subreg restore: creating the indexes failed (%s)\n", store_status_name(st));
        goto done;
    }
    if (!target_ready(sha, err, sizeof err)) {
        fprintf(stderr, "subreg restore: %s\n", err);
        goto done;
    }
    st = set_marker(sha, false);
    char at[32];
    format_rfc3339(now_ms(), at);
    const cJSON *colls = json_get(doc, "collections");
    int restored = 0;
    for (size_t i = 0; i < NPARTS && st == ST_OK; i++) {
        const cJSON *docs = json_get(colls, PARTS[i].collection);
        if (!docs || !docs->child) continue;
        st = store_insert_many(PARTS[i].collection, docs);
        if (st == ST_OK && PARTS[i].res) {
            cJSON *recs = restore_records(PARTS[i].res, docs, at);
            st = store_insert_many(COLL_AUDIT, recs);
            cJSON_Delete(recs);
        }
        restored += cJSON_GetArraySize(docs);
    }
    if (st == ST_OK) st = restore_content(json_get(doc, "document_content"));
    if (st == ST_OK) st = store_stamp_bump("publications");
    if (st == ST_OK) st = set_marker(sha, true);
    if (st != ST_OK) {
        fprintf(stderr, "subreg restore: writing failed (%s); run the same restore again to complete it\n",
                store_status_name(st));
        goto done;
    }
    log_msgf(LOG_INFO, "restore: %d documents from %s", restored, path);
    rc = 0;
done:
    cJSON_Delete(doc);
    return rc;
}
