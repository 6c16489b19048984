/* Retries: due attempts per shard, under a lease per period; and the API's
 * ping and redelivery. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"

/* ---- one round ------------------------------------------------------------- */

/* Claims this period's lease of each shard it can; returns the owned ones. A
 * lease, once known, holds for its whole period: what this thread learned about
 * a period (mine, or another's) is kept, so a round asks the database only
 * about shards it has not seen in that period. */
typedef struct {
    int64_t period; /* the period + 1 (0: nothing known) */
    bool mine;
} shard_lease;
static shard_lease known[2][SHARDS];

static int claim_shards(int64_t period, int owned[SHARDS])
{
    int n = 0;
    char at[32];
    format_rfc3339(now_ms(), at);
    for (int s = 0; s < SHARDS; s++) {
        shard_lease *k = &known[period & 1][s];
        if (k->period == period + 1) {
            if (k->mine) owned[n++] = s;
            continue;
        }
        char id[64];
        snprintf(id, sizeof id, "%d-%lld", s, (long long)period);
        store_status st = put_lease(id, period, at);
        if (st != ST_OK && st != ST_DUPLICATE) break; /* unknown: ask again next round */
        k->period = period + 1;
        k->mine = st == ST_OK;
        if (k->mine) owned[n++] = s;
    }
    return n;
}

/* Appends {name: {op: [...]}} with the strings of items (member NULL) or
 * their members named member; nothing when there are none. Returns how many. */
static int append_strings(bson_t *filter, const char *name, const char *op, const cJSON *items, const char *member)
{
    int n = 0;
    for (const cJSON *e = items->child; e; e = e->next) n += (member ? json_get_str(e, member) : e->valuestring) != NULL;
    if (n == 0) return 0;
    bson_t sub, arr;
    BSON_APPEND_DOCUMENT_BEGIN(filter, name, &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, op, &arr);
    int k = 0;
    for (const cJSON *e = items->child; e; e = e->next) {
        const char *v = member ? json_get_str(e, member) : e->valuestring;
        if (!v) continue;
        char key[16];
        snprintf(key, sizeof key, "%d", k++);
        BSON_APPEND_UTF8(&arr, key, v);
    }
    bson_append_array_end(&sub, &arr);
    bson_append_document_end(filter, &sub);
    return n;
}

/* Documents of coll whose ids are the values of member in items, in one query. */
static store_status load_by_ids(const char *coll, const cJSON *items, const char *member, cJSON **out)
{
    bson_t in = BSON_INITIALIZER;
    int k = append_strings(&in, "_id", "$in", items, member);
    store_status st = k ? store_find(coll, &in, NULL, k, out) : ST_OK;
    if (!k) *out = cJSON_CreateArray();
    bson_destroy(&in);
    return st;
}

static cJSON *take_by_id(cJSON *arr, const char *id)
{
    cJSON *x = json_find_by_id(arr, id);
    return x ? cJSON_DetachItemViaPointer(arr, x) : NULL;
}

/* The due entries of the owned shards, oldest first, less those in memory
 * and those of subscriptions whose lane is full (a dead receiver's backlog
 * never fills the batch). */
static store_status read_due(const int *owned, int n, int64_t now, int limit, cJSON **out)
{
    bson_t filter = BSON_INITIALIZER, sub, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "shard", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        BSON_APPEND_INT32(&arr, k, owned[i]);
    }
    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "due_ms", &sub);
    BSON_APPEND_DOUBLE(&sub, "$lte", (double)now);
    bson_append_document_end(&filter, &sub);
    cJSON *busy = jobs_in_memory(), *full = full_lanes();
    append_strings(&filter, "_id", "$nin", busy, NULL);
    append_strings(&filter, "webhook_id", "$nin", full, NULL);
    cJSON_Delete(busy);
    cJSON_Delete(full);
    store_status st = store_find(COLL_DELIVERY_DUE, &filter, "due_ms", limit, out);
    bson_destroy(&filter);
    return st;
}

/* Due entries not sent (subscription deleted or disabled, or the event lost):
 * their deliveries are cancelled (a document is created where none exists) and
 * the entries dropped. */
static void cancel_deliveries(const cJSON *cancel, cJSON *priors, const char *at)
{
    cJSON *docs = cJSON_CreateArray(), *drop = cJSON_CreateArray();
    for (const cJSON *e = cancel->child; e; e = e->next) {
        const char *id = json_get_str(e, "id");
        cJSON *d = cJSON_GetNumberValue(json_get(e, "attempts")) > 0 ? take_by_id(priors, id) : NULL;
        if (!d) d = delivery_doc(e, at);
        cJSON_ReplaceItemInObject(d, "updated_at", cJSON_CreateString(at));
        cJSON_DeleteItemFromObject(d, "state");
        cJSON_AddStringToObject(d, "state", "cancelled");
        cJSON_DeleteItemFromObject(d, "next_attempt_at");
        cJSON_AddItemToArray(docs, d);
        cJSON_AddItemToArray(drop, cJSON_CreateString(id));
        store_delete(RES_DELIVERY.collection, id);
    }
    if (store_insert_many(RES_DELIVERY.collection, docs) == ST_OK && store_delete_ids(COLL_DELIVERY_DUE, drop) == ST_OK)
        __atomic_add_fetch(&m_exhausted, (uint64_t)cJSON_GetArraySize(drop), __ATOMIC_RELAXED);
    cJSON_Delete(docs);
    cJSON_Delete(drop);
}

/* Clears the backlog mark of subscriptions none of whose deferred first
 * attempts is due any more (known only when every shard was read). */
static void clear_backlogs(const cJSON *due)
{
    cJSON *marked = backlog_lanes();
    for (const cJSON *h = marked->child; h; h = h->next) {
        bool found = false;
        for (const cJSON *e = due->child; e && !found; e = e->next)
            found = !strcmp(json_get_str(e, "webhook_id"), h->valuestring);
        if (!found) lane_clear_backlog(h->valuestring);
    }
    cJSON_Delete(marked);
}

bool due_backlog;

void deliver_due(int64_t now, const hook_index *hooks)
{
    int64_t round_start = mono_ms();
    int room = sender_room();
    if (room <= 0) return; /* due_backlog stays as it was */
    int64_t period = now / notify_cfg.lease_ms;
    int64_t period_end = (period + 1) * notify_cfg.lease_ms;
    int owned[SHARDS];
    int n = claim_shards(period, owned);
    /* An attempt started now may still run when the lease ends: near the end,
     * send only for shards whose next lease this instance holds as well. */
    bool near_end = now + notify_cfg.timeout_ms + 2000 > period_end;
    if (n > 0 && near_end) {
        int next[SHARDS], nn = claim_shards(period + 1, next), k = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nn; j++)
                if (owned[i] == next[j]) owned[k++] = owned[i];
        n = k;
    }
    if (n == 0) return;
    cJSON *due = NULL;
    /* Enough to fill the free slots even when several entries share a lane. */
    int limit = room * 4 < BATCH ? room * 4 : BATCH;
    if (read_due(owned, n, now, limit, &due) != ST_OK) return;
    if (n == SHARDS && cJSON_GetArraySize(due) < limit) clear_backlogs(due);
    if (cJSON_GetArraySize(due) == 0) {
        cJSON_Delete(due);
        return;
    }
    /* Attempts end within the lease held: what cannot start now stays due. */
    int64_t lease_end = period_end + (near_end ? notify_cfg.lease_ms : 0);
    int64_t start_until = round_start + (lease_end - now_ms()) - LEASE_MARGIN_MS - notify_cfg.timeout_ms;
    /* What goes now: room in the sender and in the subscription's lane. */
    cJSON *take = cJSON_CreateArray(), *cancel = cJSON_CreateArray();
    for (cJSON *e = due->child, *next; e; e = next) {
        next = e->next;
        const char *hid = json_get_str(e, "webhook_id");
        const cJSON *hook = find_hook(hooks, hid);
        if (!hook || !cJSON_IsTrue(json_get(hook, "enabled"))) {
            cJSON_AddItemToArray(cancel, cJSON_DetachItemViaPointer(due, e));
            continue;
        }
        int taken_for_lane = 0;
        for (const cJSON *t = take->child; t; t = t->next) taken_for_lane += !strcmp(json_get_str(t, "webhook_id"), hid);
        if (room > 0 && lane_room(hid) > taken_for_lane) {
            cJSON_AddItemToArray(take, cJSON_DetachItemViaPointer(due, e));
            room--;
        }
    }
    /* Left for want of a free slot: look again as soon as one frees up. */
    due_backlog = room == 0 && cJSON_GetArraySize(due) > 0;
    cJSON_Delete(due);
    cJSON *events = NULL, *priors = NULL, *retries = cJSON_CreateArray(), *event_refs = cJSON_CreateArray();
    /* The distinct events of what goes, and the documents of retried deliveries. */
    for (const cJSON *e = take->child; e; e = e->next) {
        const char *eid = json_get_str(e, "event_id");
        if (!json_find_by_id(event_refs, eid)) {
            cJSON *ref = cJSON_CreateObject();
            cJSON_AddStringToObject(ref, "id", eid);
            cJSON_AddItemToArray(event_refs, ref);
        }
    }
    for (int c = 0; c < 2; c++)
        for (const cJSON *e = (c ? cancel : take)->child; e; e = e->next)
            if (cJSON_GetNumberValue(json_get(e, "attempts")) > 0) cJSON_AddItemReferenceToArray(retries, (cJSON *)e);
    store_status st = load_by_ids(RES_EVENT.collection, event_refs, "id", &events);
    if (st == ST_OK) st = load_by_ids(RES_DELIVERY.collection, retries, "id", &priors);
    cJSON_Delete(event_refs);
    cJSON_Delete(retries);
    if (st != ST_OK) {
        cJSON_Delete(events);
        cJSON_Delete(priors);
        cJSON_Delete(take);
        cJSON_Delete(cancel);
        return;
    }
    char at[32];
    format_rfc3339(now, at);
    group *g = group_new(false, cJSON_GetArraySize(take));
    g->owned = cJSON_CreateArray();
    cJSON_AddItemToArray(g->owned, take);
    cJSON_AddItemToArray(g->owned, events);
    g->start_until = start_until;
    int k = 0;
    for (cJSON *e = take->child, *next; e; e = next) {
        next = e->next;
        const char *id = json_get_str(e, "id");
        const cJSON *ev = json_find_by_id(events, json_get_str(e, "event_id"));
        if (!ev) {
            /* The event is lost: not sent. */
            cJSON_AddItemToArray(cancel, cJSON_DetachItemViaPointer(take, e));
            continue;
        }
        cJSON *pd = cJSON_GetNumberValue(json_get(e, "attempts")) > 0 ? take_by_id(priors, id) : NULL;
        job *j = &g->jobs[k++];
        job_init(j, e, find_hook(hooks, json_get_str(e, "webhook_id")), json_get_str(ev, "payload"),
                 (int)cJSON_GetNumberValue(json_get(e, "attempts")) + 1);
        j->prior = pd;
        j->group = g;
    }
    g->n = k;
    cancel_deliveries(cancel, priors, at);
    cJSON_Delete(priors);
    cJSON_Delete(cancel);
    group_start(g);
    log_msgf(LOG_DEBUG, "delivery round: %d attempts started, prepared in %lld ms", k,
             (long long)(mono_ms() - round_start));
}

/* ---- ping and redelivery ------------------------------------------------------ */

store_status deliver_ping(const cJSON *hook, cJSON **result)
{
    char *event_id = new_id("ping_");
    int64_t now = now_ms();
    char at[32];
    format_rfc3339(now, at);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "ping");
    cJSON_AddStringToObject(ev, "timestamp", at);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(ev, "data"), "webhook_id", json_get_str(hook, "id"));
    char *body = json_dump(ev);
    store_status st = put_event(event_id, "ping", body, at, now, true);
    cJSON *due = due_entry(event_id, "ping", json_get_str(hook, "id"), at, now, 0);
    if (st == ST_OK) {
        job j;
        job_init(&j, due, hook, body, 1);
        send_now(&j);
        format_rfc3339(now_ms(), at);
        bool ok = j.status >= 200 && j.status < 300;
        cJSON *d = delivery_doc(due, at);
        cJSON *log = cJSON_AddArrayToObject(d, "attempt_log");
        cJSON_AddItemToArray(log, attempt_entry(&j, at));
        cJSON_AddNumberToObject(d, "attempts", 1);
        cJSON_AddStringToObject(d, "last_attempt_at", at);
        cJSON_AddStringToObject(d, "state", ok ? "delivered" : "failed");
        if (j.status) cJSON_AddNumberToObject(d, "last_status", (double)j.status);
        cJSON *one = cJSON_CreateArray();
        cJSON_AddItemToArray(one, d);
        st = store_insert_many(RES_DELIVERY.collection, one);
        cJSON_Delete(one);
        __atomic_add_fetch(ok ? &m_delivered : &m_failed_attempts, 1, __ATOMIC_RELAXED);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "delivery_id", j.id);
        cJSON_AddBoolToObject(r, "success", ok);
        if (j.status) cJSON_AddNumberToObject(r, "status_code", (double)j.status);
        cJSON_AddNumberToObject(r, "latency_ms", j.latency_ms);
        if (j.error[0]) cJSON_AddStringToObject(r, "error", j.error);
        *result = r;
        job_clear(&j);
    }
    cJSON_Delete(due);
    cJSON_Delete(ev);
    free(body);
    free(event_id);
    return st;
}

store_status schedule_redelivery(const cJSON *d)
{
    const char *id = json_get_str(d, "id");
    int64_t now = now_ms();
    char at[32];
    format_rfc3339(now, at);
    cJSON *set = cJSON_CreateObject();
    cJSON_AddStringToObject(set, "state", "pending");
    cJSON_AddStringToObject(set, "next_attempt_at", at);
    cJSON_AddStringToObject(set, "updated_at", at);
    store_status st = store_update(RES_DELIVERY.collection, id, set);
    cJSON_Delete(set);
    if (st != ST_OK) return st;
    int attempts = (int)cJSON_GetNumberValue(json_get(d, "attempts"));
    cJSON *e = due_entry(json_get_str(d, "event_id"), json_get_str(d, "event_type"), json_get_str(d, "webhook_id"),
                         at, now, attempts < 1 ? 1 : attempts);
    cJSON *due = cJSON_CreateArray();
    cJSON_AddItemToArray(due, e);
    st = store_insert_many(COLL_DELIVERY_DUE, due);
    if (st == ST_OK) {
        cJSON *s2 = cJSON_CreateObject();
        cJSON_AddNumberToObject(s2, "due_ms", (double)now);
        st = store_update(COLL_DELIVERY_DUE, id, s2);
        cJSON_Delete(s2);
    }
    cJSON_Delete(due);
    return st;
}

