/* Recording what attempts learned (deliveries, the next due entries, the
 * subscriptions' health) and the cached, indexed subscriptions. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "subreg/write.h"

#include "delivery.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"

/* ---- recording results ------------------------------------------------------ */

static void excerpt_string(const job *j, char *out, size_t outlen)
{
    /* The first bytes of the answer, as valid UTF-8 text. */
    size_t k = 0;
    for (size_t i = 0; i < j->excerpt_len && k + 1 < outlen; i++) {
        unsigned char c = (unsigned char)j->excerpt[i];
        out[k++] = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? (char)c : '?';
    }
    out[k] = '\0';
}

cJSON *attempt_entry(const job *j, const char *at)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "n", j->attempt);
    cJSON_AddStringToObject(a, "at", at);
    if (j->status) cJSON_AddNumberToObject(a, "status_code", (double)j->status);
    cJSON_AddNumberToObject(a, "latency_ms", j->latency_ms);
    if (j->error[0]) cJSON_AddStringToObject(a, "error", j->error);
    char ex[EXCERPT + 1];
    excerpt_string(j, ex, sizeof ex);
    if (*ex) cJSON_AddStringToObject(a, "response_excerpt", ex);
    cJSON_AddStringToObject(a, "instance", instance_id);
    return a;
}

typedef struct {
    const char *id;
    bool ok, gone;
} hook_health;

/* Applies what a round learned about a subscription: recovered, failing, or to
 * be disabled (410, or failing longer than allowed). An audited update. */
static void update_health(const cJSON *hook, const hook_health *h, int64_t now)
{
    const char *failing = json_get_str(hook, "failing_since");
    int64_t since = 0;
    if (failing) parse_rfc3339(failing, &since);
    char at[32], reason[256] = "";
    format_rfc3339(now, at);
    bool disable = false;
    if (h->gone) {
        disable = true;
        snprintf(reason, sizeof reason, "the receiver answered 410 Gone");
    } else if (!h->ok && failing && now - since > (int64_t)notify_cfg.disable_after_s * 1000) {
        disable = true;
        snprintf(reason, sizeof reason, "failing since %s (longer than %d s)", failing, notify_cfg.disable_after_s);
    }
    if (h->ok && !failing) return;
    if (!h->ok && failing && !disable) return;
    cJSON *doc = cJSON_Duplicate(hook, 1);
    cJSON_DeleteItemFromObject(doc, "failing_since");
    if (!h->ok) cJSON_AddStringToObject(doc, "failing_since", failing ? failing : at);
    if (disable) {
        cJSON_ReplaceItemInObject(doc, "enabled", cJSON_CreateFalse());
        cJSON_DeleteItemFromObject(doc, "disabled_reason");
        cJSON_AddStringToObject(doc, "disabled_reason", reason);
        log_msgf(LOG_WARN, "webhook %s disabled: %s", h->id, reason);
    }
    char *rid = new_id("dlv_");
    /* ST_STALE: an admin changed the subscription meanwhile; the next round sees it. */
    doc_write(&RES_WEBHOOK, &(write_origin){ACTOR_DELIVERY, rid, now}, NULL, h->id, hook, doc, NULL);
    free(rid);
    cJSON_Delete(doc);
}


static int cmp_hook(const void *a, const void *b)
{
    return strcmp(json_get_str(*(const cJSON *const *)a, "id"), json_get_str(*(const cJSON *const *)b, "id"));
}

hook_index index_hooks(const cJSON *hooks)
{
    hook_index ix = {.v = xcalloc((size_t)cJSON_GetArraySize(hooks) + 1, sizeof *ix.v)};
    for (const cJSON *h = hooks ? hooks->child : NULL; h; h = h->next)
        if (json_get_str(h, "id")) ix.v[ix.n++] = h;
    qsort(ix.v, (size_t)ix.n, sizeof *ix.v, cmp_hook);
    return ix;
}

/* The position of subscription id in the index, or -1. */
static int hook_pos(const hook_index *ix, const char *id)
{
    int lo = 0, hi = ix->n - 1;
    while (lo <= hi && id) {
        int mid = (lo + hi) / 2, c = strcmp(json_get_str(ix->v[mid], "id"), id);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

const cJSON *find_hook(const hook_index *ix, const char *id)
{
    int pos = hook_pos(ix, id);
    return pos < 0 ? NULL : ix->v[pos];
}

/* A delivery document as its first attempt (or cancellation) creates it. */
cJSON *delivery_doc(const cJSON *due, const char *at)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", json_get_str(due, "id"));
    cJSON_AddNumberToObject(d, "version", 1);
    cJSON_AddStringToObject(d, "created_at", json_get_str(due, "created_at") ? json_get_str(due, "created_at") : at);
    cJSON_AddStringToObject(d, "updated_at", at);
    cJSON_AddStringToObject(d, "webhook_id", json_get_str(due, "webhook_id"));
    cJSON_AddStringToObject(d, "event_id", json_get_str(due, "event_id"));
    cJSON_AddStringToObject(d, "event_type", json_get_str(due, "event_type"));
    return d;
}

/* Records the outcome of each job. First attempts become inserts in one round
 * trip; only retries update documents. direct: the due entries exist only in
 * memory (a fan-out's first attempts): a retry's entry is inserted (before the
 * documents, so that a crash in between leaves an entry, never a pending
 * document without one), none is deleted. A deferred first attempt (its
 * subscription's lane was full) becomes a due entry, due now. */
store_status record_results(job **jobs, int n, const hook_index *hooks, int64_t now, bool direct)
{
    cJSON *inserts = cJSON_CreateArray(), *ids = cJSON_CreateArray(), *sets = cJSON_CreateArray();
    cJSON *due_ids = cJSON_CreateArray(), *due_sets = cJSON_CreateArray(), *done = cJSON_CreateArray();
    cJSON *due_new = cJSON_CreateArray();
    uint64_t n_delivered = 0, n_exhausted = 0, n_deferred = 0; /* counted once written */
    /* One health entry per subscription in this batch; slot[pos] - 1 is the
     * entry of the subscription at index position pos. */
    hook_health *hs = xcalloc((size_t)n + 1, sizeof *hs);
    int *slot = xcalloc((size_t)hooks->n + 1, sizeof *slot), nh = 0;
    char at[32];
    format_rfc3339(now, at);
    for (int i = 0; i < n; i++) {
        job *j = jobs[i];
        if (j->deferred) {
            cJSON *ds = cJSON_Duplicate(j->due, 1);
            cJSON_ReplaceItemInObject(ds, "due_ms", cJSON_CreateNumber((double)now));
            cJSON_AddItemToArray(due_new, ds);
            n_deferred++;
            continue;
        }
        int pos = hook_pos(hooks, j->hook_id);
        const cJSON *hook = pos < 0 ? NULL : hooks->v[pos];
        cJSON *log = j->prior ? cJSON_Duplicate(json_get(j->prior, "attempt_log"), 1) : NULL;
        if (!log) log = cJSON_CreateArray();
        cJSON_AddItemToArray(log, attempt_entry(j, at));
        cJSON *set = cJSON_CreateObject();
        cJSON_AddItemToObject(set, "attempt_log", log);
        cJSON_AddNumberToObject(set, "attempts", j->attempt);
        cJSON_AddStringToObject(set, "last_attempt_at", at);
        cJSON_AddStringToObject(set, "updated_at", at);
        if (j->status) cJSON_AddNumberToObject(set, "last_status", (double)j->status);
        bool ok = j->status >= 200 && j->status < 300;
        bool gone = j->status == 410;
        hook_health *h = NULL;
        if (hook && !slot[pos]) {
            h = &hs[nh++];
            slot[pos] = nh;
            h->id = json_get_str(hook, "id");
        } else if (hook) {
            h = &hs[slot[pos] - 1];
        }
        if (h) {
            h->ok = h->ok || ok;
            h->gone = h->gone || gone;
        }
        if (ok) {
            cJSON_AddStringToObject(set, "state", "delivered");
            cJSON_AddStringToObject(set, "delivered_at", at);
            cJSON_AddNullToObject(set, "next_attempt_at");
            cJSON_AddItemToArray(done, cJSON_CreateString(j->id));
            n_delivered++;
        } else {
            __atomic_add_fetch(&m_failed_attempts, 1, __ATOMIC_RELAXED);
            uint32_t rnd;
            random_bytes(&rnd, sizeof rnd);
            int64_t ms = retry_wait_ms(gone ? -1 : retry_delay(notify_cfg.retry_schedule, j->attempt + 1),
                                       parse_retry_after(j->retry_after[0] ? j->retry_after : NULL, now / 1000), rnd);
            if (ms < 0) {
                cJSON_AddStringToObject(set, "state", "failed");
                cJSON_AddNullToObject(set, "next_attempt_at");
                cJSON_AddItemToArray(done, cJSON_CreateString(j->id));
                n_exhausted++;
            } else {
                char next[32];
                format_rfc3339(now + ms, next);
                cJSON_AddStringToObject(set, "state", "pending");
                cJSON_AddStringToObject(set, "next_attempt_at", next);
                cJSON *ds = direct ? cJSON_Duplicate(j->due, 1) : cJSON_CreateObject();
                cJSON_DeleteItemFromObjectCaseSensitive(ds, "due_ms");
                cJSON_DeleteItemFromObjectCaseSensitive(ds, "attempts");
                cJSON_AddNumberToObject(ds, "due_ms", (double)(now + ms));
                cJSON_AddNumberToObject(ds, "attempts", j->attempt);
                if (direct) {
                    cJSON_AddItemToArray(due_new, ds);
                } else {
                    cJSON_AddItemToArray(due_ids, cJSON_CreateString(j->id));
                    cJSON_AddItemToArray(due_sets, ds);
                }
            }
        }
        if (j->prior) {
            cJSON_AddItemToArray(ids, cJSON_CreateString(j->id));
            cJSON_AddItemToArray(sets, set);
        } else {
            cJSON *d = delivery_doc(j->due, at);
            while (set->child) {
                cJSON *m = set->child;
                char *name = xstrdup(m->string);
                cJSON_DeleteItemFromObjectCaseSensitive(d, name);
                cJSON_AddItemToObject(d, name, cJSON_DetachItemViaPointer(set, m));
                free(name);
            }
            cJSON_Delete(set);
            cJSON_AddItemToArray(inserts, d);
        }
    }
    store_status st = store_insert_many(COLL_DELIVERY_DUE, due_new);
    if (st == ST_OK) st = store_insert_many(RES_DELIVERY.collection, inserts);
    if (st == ST_OK) st = store_update_many(RES_DELIVERY.collection, ids, sets);
    if (st == ST_OK) st = store_update_many(COLL_DELIVERY_DUE, due_ids, due_sets);
    if (st == ST_OK && !direct) st = store_delete_ids(COLL_DELIVERY_DUE, done);
    if (st == ST_OK) {
        __atomic_add_fetch(&m_delivered, n_delivered, __ATOMIC_RELAXED);
        __atomic_add_fetch(&m_exhausted, n_exhausted, __ATOMIC_RELAXED);
        __atomic_add_fetch(&m_deferred, n_deferred, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < nh; i++) update_health(find_hook(hooks, hs[i].id), &hs[i], now);
    free(hs);
    free(slot);
    cJSON_Delete(due_new);
    cJSON_Delete(inserts);
    cJSON_Delete(ids);
    cJSON_Delete(sets);
    cJSON_Delete(due_ids);
    cJSON_Delete(due_sets);
    cJSON_Delete(done);
    return st;
}

/* ---- the subscriptions, cached ------------------------------------------------
 * Thousands of subscriptions are read every round; the thread keeps a copy and
 * reloads it when the change token moved (notify_webhooks_changed, written by
 * whichever instance changed a subscription). */

static cJSON *hook_cache;
static hook_index hook_ix;
static char hook_cache_token[40];

/* Every change to a subscription, on any instance, writes a new token into one
 * small document; a round reloads its copy when the token moved. The token is
 * written before the change is answered, so an event created after a
 * subscription's 201 always finds it. */
void notify_webhooks_changed(void)
{
    store_stamp_bump("webhooks");
}

/* The subscriptions, indexed by id; NULL when none could be loaded yet. The
 * index is rebuilt only when the copy is reloaded. */
const hook_index *cached_hooks(void)
{
    char token[40];
    store_status sst = store_stamp_read("webhooks", token, sizeof token);
    if (hook_cache && (sst != ST_OK || strcmp(token, hook_cache_token) == 0)) return &hook_ix;
    if (sst == ST_OK) snprintf(hook_cache_token, sizeof hook_cache_token, "%s", token);
    bson_t all = BSON_INITIALIZER;
    cJSON *fresh = NULL;
    store_status st = store_find(RES_WEBHOOK.collection, &all, NULL, 1000000, &fresh);
    bson_destroy(&all);
    if (st != ST_OK) return hook_cache ? &hook_ix : NULL;
    cJSON_Delete(hook_cache);
    free(hook_ix.v);
    hook_cache = fresh;
    hook_ix = index_hooks(hook_cache);
    return &hook_ix;
}

void forget_hooks(void)
{
    cJSON_Delete(hook_cache);
    free(hook_ix.v);
    hook_ix = (hook_index){0};
    hook_cache = NULL;
    hook_cache_token[0] = '\0';
}

