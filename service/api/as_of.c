/* as_of: documents as they were at the end of a past day (see as_of.h). */
#include "subreg/as_of.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/api.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/util.h"

/* When the day after date begins in the zone. */
static int64_t day_end_ms(const char *date)
{
    char next[16];
    format_date((date_to_days(date) + 1) * MS_PER_DAY, next);
    return local_day_start_ms(next);
}

/* The day of the first audit record in the zone; "" when the trail is empty. */
static store_status first_audit_day(char out[16])
{
    bson_t all = BSON_INITIALIZER;
    cJSON *first = NULL;
    store_status st = store_find(COLL_AUDIT, &all, "_id", 1, &first);
    bson_destroy(&all);
    const char *at = st == ST_OK && first->child ? json_get_str(first->child, "at") : NULL;
    int64_t ms;
    out[0] = '\0';
    if (at && parse_rfc3339(at, &ms)) format_local_date(ms, out);
    cJSON_Delete(first);
    return st;
}

#define AS_OF_EXTRA_DEADLINE_MS 60000

bool as_of_param(req *r, as_of *out)
{
    memset(out, 0, sizeof *out);
    char today[16], detail[256];
    format_local_date(now_ms(), today);
    const char *v = req_query(r, "as_of");
    if (v && !is_valid_date(v)) {
        respond_problem(r, 400, "malformed-request", "as_of must be a date (YYYY-MM-DD)");
        return false;
    }
    snprintf(out->date, sizeof out->date, "%s", v ? v : today);
    if (strcmp(out->date, today) > 0) {
        snprintf(detail, sizeof detail, "as_of %s is in the future: today is %s (%s)", out->date, today, local_zone());
        respond_problem(r, 422, "unprocessable-entity", detail);
        return false;
    }
    out->past = strcmp(out->date, today) < 0;
    if (!out->past) return true;
    /* a past day is read from the audit trail, linear in its length (about
     * 0.12 ms a record on the embedded database): the deadline of one
     * document's work would cut off any history of more than ~25,000 records */
    store_extend_deadline(AS_OF_EXTRA_DEADLINE_MS);
    out->end_ms = day_end_ms(out->date);
    /* Before the first record there is no state to reconstruct: saying "nothing
     * existed" would be a guess. */
    char first[16];
    store_status st = first_audit_day(first);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return false;
    }
    if (!first[0] || strcmp(out->date, first) < 0) {
        if (first[0])
            snprintf(detail, sizeof detail,
                     "as_of %s is before the audit trail begins: the earliest day available is %s (%s)", out->date,
                     first, local_zone());
        else
            snprintf(detail, sizeof detail, "as_of %s: the audit trail is empty, only today can be evaluated",
                     out->date);
        respond_problem(r, 422, "unprocessable-entity", detail);
        return false;
    }
    return true;
}

void as_of_describe(cJSON *body, const as_of *when)
{
    cJSON_AddStringToObject(body, "as_of", when->date);
    cJSON_AddStringToObject(body, "time_zone", local_zone());
}

bool as_of_supported(const resource *res)
{
    /* every resource written through doc_write (audited) announces its changes */
    return res->events != EVENTS_NONE;
}

/* ---- the latest audited state per entity ----------------------------------
 * An open-addressing map from "<type>/<id>" to the after of the highest
 * entity_version seen: memory grows with the number of entities, not with the
 * length of the trail read. Versions decide, not the order of the records (two
 * changes in one millisecond may sort either way by _id). */

typedef struct {
    char *key;
    int64_t version;
    size_t type; /* index into the resources asked for */
    cJSON *after;
} slot;

typedef struct {
    slot *v;
    size_t cap, n;
    const resource *const *res;
    size_t nres;
} latest;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static slot *find_slot(slot *v, size_t cap, const char *key)
{
    size_t i = hash_str(key) & (cap - 1);
    while (v[i].key && strcmp(v[i].key, key) != 0) i = (i + 1) & (cap - 1);
    return &v[i];
}

/* The slot of key, existing or empty (then the caller fills it). */
static slot *latest_slot(latest *m, const char *key)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        slot *v = xcalloc(cap, sizeof *v);
        for (size_t i = 0; i < m->cap; i++)
            if (m->v[i].key) *find_slot(v, cap, m->v[i].key) = m->v[i];
        free(m->v);
        m->v = v;
        m->cap = cap;
    }
    return find_slot(m->v, m->cap, key);
}

/* One audit record: its after is converted only when it is the highest version
 * of its entity seen so far — read newest first, that is about once per entity. */
static void take_record(const bson_t *rec, void *ctx)
{
    latest *m = ctx;
    const char *type = NULL, *id = NULL;
    int64_t version = 0;
    bson_iter_t it, after;
    bool has_after = false;
    if (!bson_iter_init(&it, rec)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "entity_type") && BSON_ITER_HOLDS_UTF8(&it)) type = bson_iter_utf8(&it, NULL);
        else if (!strcmp(k, "entity_id") && BSON_ITER_HOLDS_UTF8(&it)) id = bson_iter_utf8(&it, NULL);
        else if (!strcmp(k, "entity_version")) version = bson_iter_as_int64(&it);
        else if (!strcmp(k, "after")) after = it, has_after = true;
    }
    size_t t = 0;
    while (t < m->nres && (!type || strcmp(m->res[t]->type, type) != 0)) t++;
    if (t == m->nres || !id || !has_after) return;
    strbuf key = {0};
    sb_printf(&key, "%s/%s", type, id);
    slot *s = latest_slot(m, key.data);
    if (s->key && s->version >= version) {
        sb_free(&key);
        return;
    }
    if (!s->key) {
        s->key = key.data;
        m->n++;
    } else {
        sb_free(&key);
    }
    cJSON_Delete(s->after);
    s->after = bson_iter_to_json(&after);
    s->version = version;
    s->type = t;
}

static int cmp_id(const void *a, const void *b)
{
    const char *x = json_get_str(*(cJSON *const *)a, "id"), *y = json_get_str(*(cJSON *const *)b, "id");
    return strcmp(x ? x : "", y ? y : "");
}

/* The documents that existed (a delete's after is null), per resource, in id order. */
static void latest_collect(latest *m, cJSON **out)
{
    cJSON ***docs = xcalloc(m->nres, sizeof *docs);
    size_t *count = xcalloc(m->nres, sizeof *count);
    for (size_t t = 0; t < m->nres; t++) docs[t] = xcalloc(m->n + 1, sizeof **docs);
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->v[i];
        if (s->key && cJSON_IsObject(s->after)) {
            docs[s->type][count[s->type]++] = s->after;
            s->after = NULL;
        }
        free(s->key);
        cJSON_Delete(s->after);
    }
    for (size_t t = 0; t < m->nres; t++) {
        qsort(docs[t], count[t], sizeof *docs[t], cmp_id);
        out[t] = cJSON_CreateArray();
        for (size_t k = 0; k < count[t]; k++) cJSON_AddItemToArray(out[t], docs[t][k]);
        free(docs[t]);
    }
    free(docs);
    free(count);
    free(m->v);
}

/* Audit records before the end of the day ({_id: {$lt: floor}}, the _id index),
 * of the given types (and one entity id, unless NULL) → out[i] per resource. */
static store_status reconstruct(const as_of *when, const resource *const *res, size_t n, const char *id, cJSON **out)
{
    char floor[64];
    new_id_floor("au_", when->end_ms, floor, sizeof floor);
    bson_t filter = BSON_INITIALIZER, range, types, in;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &range);
    BSON_APPEND_UTF8(&range, "$lt", floor);
    bson_append_document_end(&filter, &range);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "entity_type", &types);
    BSON_APPEND_ARRAY_BEGIN(&types, "$in", &in);
    for (size_t i = 0; i < n; i++) {
        char k[24];
        snprintf(k, sizeof k, "%zu", i);
        BSON_APPEND_UTF8(&in, k, res[i]->type);
    }
    bson_append_array_end(&types, &in);
    bson_append_document_end(&filter, &types);
    if (id) BSON_APPEND_UTF8(&filter, "entity_id", id);
    latest m = {.res = res, .nres = n};
    /* newest first; only the state after a change is needed (half of a record) */
    store_status st = store_scan(COLL_AUDIT, &filter, "before", true, take_record, &m);
    bson_destroy(&filter);
    latest_collect(&m, out);
    if (st != ST_OK)
        for (size_t i = 0; i < n; i++) {
            cJSON_Delete(out[i]);
            out[i] = NULL;
        }
    return st;
}

store_status registry_as_of(const as_of *when, const resource *const *res, size_t n, cJSON **out)
{
    return reconstruct(when, res, n, NULL, out);
}

store_status as_of_fill_omitted(const resource *res, cJSON *doc)
{
    if (!res->audit_omit) return ST_OK;
    cJSON *now = NULL;
    store_status st = store_get(res->collection, json_get_str(doc, "id"), &now);
    if (st == ST_NOT_FOUND) return ST_OK; /* gone since: the frozen copy with it */
    for (const char *const *k = res->audit_omit; st == ST_OK && *k; k++) {
        const cJSON *v = json_get(now, *k);
        if (v && !json_get(doc, *k)) cJSON_AddItemToObject(doc, *k, cJSON_Duplicate(v, 1));
    }
    cJSON_Delete(now);
    return st;
}

store_status document_as_of(const resource *res, const char *id, const as_of *when, cJSON **out)
{
    const resource *one[] = {res};
    cJSON *docs[1] = {NULL};
    store_status st = reconstruct(when, one, 1, id, docs);
    if (st != ST_OK) return st;
    cJSON *doc = docs[0]->child ? cJSON_DetachItemViaPointer(docs[0], docs[0]->child) : NULL;
    cJSON_Delete(docs[0]);
    if (!doc) return ST_NOT_FOUND;
    st = as_of_fill_omitted(res, doc);
    if (st != ST_OK) {
        cJSON_Delete(doc);
        return st;
    }
    *out = doc;
    return ST_OK;
}
