/* Fan-out: a queued event, once its change is committed, is claimed and its
 * first attempts go out at once from memory under a renewed lease (see
 * delivery.c). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"

/* ---- fan-out ------------------------------------------------------------- */

int shard_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return (int)(h % SHARDS);
}

/* The due entry of a new delivery: all a first attempt needs besides the event. */
cJSON *due_entry(const char *event_id, const char *type, const char *hook_id, const char *at, int64_t now,
                 int attempts)
{
    char id[160];
    snprintf(id, sizeof id, "%s-%s", event_id, hook_id);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddNumberToObject(e, "shard", shard_of(id));
    cJSON_AddNumberToObject(e, "due_ms", (double)now);
    cJSON_AddNumberToObject(e, "attempts", attempts);
    cJSON_AddStringToObject(e, "webhook_id", hook_id);
    cJSON_AddStringToObject(e, "event_id", event_id);
    cJSON_AddStringToObject(e, "event_type", type);
    cJSON_AddStringToObject(e, "created_at", at);
    return e;
}

/* The event itself is stored once, however many subscriptions receive it. Its
 * document is also the fan-out's claim: a plain insert (atomic), so when two
 * instances read the same queue entry only one fans it out. The owner renews
 * the claim (_fanout_ms) while it sends; when it lapses (the owner died, or the
 * database was away), one instance takes over by inserting the next
 * generation's lease (again a unique insert) and sends what was not recorded. */
store_status put_event(const char *event_id, const char *type, const char *body, const char *at, int64_t now,
                       bool fanned_out)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "id", event_id);
    cJSON_AddNumberToObject(ev, "version", 1);
    cJSON_AddStringToObject(ev, "created_at", at);
    cJSON_AddStringToObject(ev, "updated_at", at);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "payload", body);
    cJSON_AddStringToObject(ev, "_fanout", fanned_out ? "done" : "running");
    cJSON_AddNumberToObject(ev, "_fanout_ms", (double)now);
    cJSON_AddNumberToObject(ev, "_fanout_gen", 0);
    store_status st = store_insert(RES_EVENT.collection, ev);
    cJSON_Delete(ev);
    return st;
}

/* Inserts a lease: a unique id, so exactly one instance gets ST_OK. period lets
 * housekeeping remove it once it is history. */
store_status put_lease(const char *id, int64_t period, const char *at)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "id", id);
    cJSON_AddStringToObject(l, "owner", instance_id);
    cJSON_AddStringToObject(l, "at", at);
    cJSON_AddNumberToObject(l, "period", (double)period);
    store_status st = store_insert(COLL_DELIVERY_LEASES, l);
    cJSON_Delete(l);
    return st;
}

typedef enum { FANOUT_MINE, FANOUT_TAKEN_OVER, FANOUT_DONE, FANOUT_BUSY, FANOUT_ERROR } fanout_claim;

static fanout_claim claim_fanout(const char *qid, const char *type, const char *body, const char *at, int64_t now)
{
    store_status st = put_event(qid, type, body, at, now, false);
    if (st == ST_OK) return FANOUT_MINE;
    if (st != ST_DUPLICATE) return FANOUT_ERROR;
    cJSON *ev = NULL;
    if (store_get(RES_EVENT.collection, qid, &ev) != ST_OK) return FANOUT_ERROR;
    const char *state = json_get_str(ev, "_fanout");
    int64_t since = (int64_t)cJSON_GetNumberValue(json_get(ev, "_fanout_ms"));
    int64_t gen = (int64_t)cJSON_GetNumberValue(json_get(ev, "_fanout_gen"));
    bool done = state && !strcmp(state, "done"), live = since > now - notify_cfg.lease_ms;
    cJSON_Delete(ev);
    if (done) return FANOUT_DONE;
    if (live) return FANOUT_BUSY;
    char id[200];
    snprintf(id, sizeof id, "fanout-%s-%lld", qid, (long long)(gen + 1));
    st = put_lease(id, now / notify_cfg.lease_ms, at);
    if (st == ST_DUPLICATE) return FANOUT_BUSY;
    if (st != ST_OK) return FANOUT_ERROR;
    cJSON *set = cJSON_CreateObject();
    cJSON_AddNumberToObject(set, "_fanout_ms", (double)now);
    cJSON_AddNumberToObject(set, "_fanout_gen", (double)(gen + 1));
    st = store_update(RES_EVENT.collection, qid, set);
    cJSON_Delete(set);
    log_msgf(LOG_INFO, "fan-out of %s taken over (generation %lld)", qid, (long long)(gen + 1));
    return st == ST_OK ? FANOUT_TAKEN_OVER : FANOUT_ERROR;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* On a takeover: drops from due what an earlier owner recorded (a delivery
 * document or a retry entry exists). What it sent but did not record goes out
 * again, with the same webhook-id. */
static store_status drop_recorded(const char *qid, cJSON *due)
{
    cJSON *done[2] = {NULL, NULL};
    const char *colls[2] = {RES_DELIVERY.collection, COLL_DELIVERY_DUE};
    store_status st = ST_OK;
    for (int c = 0; c < 2 && st == ST_OK; c++) {
        bson_t f = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&f, "event_id", qid);
        st = store_find(colls[c], &f, NULL, 1000000, &done[c]);
        bson_destroy(&f);
    }
    if (st == ST_OK) {
        int n = cJSON_GetArraySize(done[0]) + cJSON_GetArraySize(done[1]), k = 0;
        const char **ids = xcalloc((size_t)n + 1, sizeof *ids);
        for (int c = 0; c < 2; c++)
            for (const cJSON *d = done[c]->child; d; d = d->next) ids[k++] = json_get_str(d, "id");
        qsort(ids, (size_t)k, sizeof *ids, cmp_str);
        for (cJSON *e = due->child, *next; e; e = next) {
            next = e->next;
            const char *id = json_get_str(e, "id");
            if (bsearch(&id, ids, (size_t)k, sizeof *ids, cmp_str)) cJSON_Delete(cJSON_DetachItemViaPointer(due, e));
        }
        free(ids);
    }
    cJSON_Delete(done[0]);
    cJSON_Delete(done[1]);
    return st;
}

/* The claim's lease runs from mono (ms) on; no attempt starts that could outlive it. */
static void lease_from(group *g, int64_t mono)
{
    g->renewed = mono;
    g->lease_end = mono + notify_cfg.lease_ms - LEASE_MARGIN_MS;
    g->start_until = g->lease_end - notify_cfg.timeout_ms;
}

bool renew_fanout(group *g)
{
    int64_t mono = mono_ms();
    if (mono >= g->lease_end) return false;
    cJSON *set = cJSON_CreateObject();
    cJSON_AddNumberToObject(set, "_fanout_ms", (double)now_ms());
    store_status st = store_update(RES_EVENT.collection, g->qid, set);
    cJSON_Delete(set);
    if (st != ST_OK) return false;
    lease_from(g, mono);
    return true;
}

void finish_fanout(group *g)
{
    cJSON *set = cJSON_CreateObject();
    cJSON_AddStringToObject(set, "_fanout", "done");
    bool done = store_update(RES_EVENT.collection, g->qid, set) == ST_OK;
    cJSON_Delete(set);
    if (done) store_delete(COLL_EVENT_QUEUE, g->qid);
    log_msgf(LOG_DEBUG, "fan-out of %s: %d attempts sent, %d deferred, %s in %lld ms", g->qid, g->sent, g->deferred,
             done ? "done" : "not finished", (long long)(mono_ms() - g->started));
}

/* Fans one claimed event out: a job per subscription, started at once from
 * memory (no due entry is written for an attempt that succeeds). A first
 * attempt to a subscription whose lane is full, or that has deferred ones not
 * sent yet, is deferred to a due entry so that it keeps its place behind them. */
static void start_fanout(const char *qid, cJSON *due, const char *body, const hook_index *hooks, int64_t claimed)
{
    group *g = group_new(true, cJSON_GetArraySize(due));
    g->qid = xstrdup(qid);
    g->body = xstrdup(body);
    g->owned = due;
    g->started = claimed;
    lease_from(g, claimed);
    int k = 0;
    for (cJSON *e = due->child; e; e = e->next) {
        const cJSON *hook = find_hook(hooks, json_get_str(e, "webhook_id"));
        if (!hook) continue;
        job *j = &g->jobs[k++];
        job_init(j, e, hook, g->body, 1);
        j->group = g;
        if (lane_backlog(j->hook_id) || lane_room(j->hook_id) <= 0) j->deferred = true;
    }
    g->n = k;
    group_start(g);
}

/* Queued events are read in pages in the order of their changes (ids are
 * time-ordered). Events being fanned out here, and those another instance is on
 * (remembered until its claim could have lapsed), are skipped without a query:
 * however many there are, newer events are not held up. */
typedef struct busy {
    char *qid;
    int64_t until;
    struct busy *next;
} busy;
static busy *busy_list;

static bool is_busy(const char *qid)
{
    int64_t mono = mono_ms();
    for (busy **p = &busy_list; *p;) {
        busy *b = *p;
        if (b->until <= mono) {
            *p = b->next;
            free(b->qid);
            free(b);
        } else if (!strcmp(b->qid, qid)) {
            return true;
        } else {
            p = &b->next;
        }
    }
    return false;
}

static void remember_busy(const char *qid)
{
    busy *b = xcalloc(1, sizeof *b);
    b->qid = xstrdup(qid);
    b->until = mono_ms() + notify_cfg.lease_ms / 4;
    b->next = busy_list;
    busy_list = b;
}

void forget_busy(void)
{
    while (busy_list) {
        busy *b = busy_list;
        busy_list = b->next;
        free(b->qid);
        free(b);
    }
}

#define QUEUE_PAGE 200

/* One event: read its audit record, claim it, fan it out. Returns false when
 * the database failed (stop this round). */
static bool fanout_one(const cJSON *q, int64_t now, const char *at, const hook_index *hooks)
{
    const char *qid = json_get_str(q, "id");
    cJSON *rec = NULL;
    store_status st = store_get(COLL_AUDIT, qid, &rec);
    if (st == ST_NOT_FOUND) {
        /* An event is queued after its audit record (store.h): without one
         * it cannot be sent, and holds up no other. */
        log_msgf(LOG_WARN, "queued event %s has no audit record; dropped", qid);
        store_delete(COLL_EVENT_QUEUE, qid);
        return true;
    }
    if (st != ST_OK) return false;
    cJSON *ev = webhook_event_from_audit(rec, notify_cfg.public_base_url);
    if (!ev) {
        store_delete(COLL_EVENT_QUEUE, qid); /* emits nothing */
        cJSON_Delete(rec);
        return true;
    }
    const char *type = json_get_str(ev, "type");
    char *body = json_dump(ev);
    cJSON *due = cJSON_CreateArray();
    const char *self = strcmp(type, "webhook.disabled") == 0 ? json_get_str(rec, "entity_id") : NULL;
    for (int i = 0; i < hooks->n; i++) {
        const cJSON *h = hooks->v[i];
        const char *hid = json_get_str(h, "id");
        if (!cJSON_IsTrue(json_get(h, "enabled")) || (self && !strcmp(self, hid))) continue;
        if (!event_type_matches(json_get(h, "event_types"), type)) continue;
        cJSON_AddItemToArray(due, due_entry(qid, type, hid, at, now, 0));
    }
    int64_t claimed = mono_ms();
    fanout_claim fc = claim_fanout(qid, type, body, at, now);
    if (fc == FANOUT_MINE || (fc == FANOUT_TAKEN_OVER && drop_recorded(qid, due) == ST_OK)) {
        start_fanout(qid, due, body, hooks, claimed); /* takes due */
        due = NULL;
    } else if (fc == FANOUT_DONE) {
        store_delete(COLL_EVENT_QUEUE, qid);
    } else if (fc == FANOUT_BUSY) {
        remember_busy(qid);
    }
    cJSON_Delete(due);
    free(body);
    cJSON_Delete(ev);
    cJSON_Delete(rec);
    return fc != FANOUT_ERROR;
}

bool fanout_backlog;

void fanout_round(int64_t now, const hook_index *hooks)
{
    char at[32], after[160] = "";
    format_rfc3339(now, at);
    bool more = true;
    /* A long fan-out waits for sending slots: take no new event meanwhile. */
    fanout_backlog = sender_waiting() >= BATCH;
    while (more && !fanout_backlog) {
        bson_t filter = BSON_INITIALIZER, gt;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &gt);
        BSON_APPEND_UTF8(&gt, "$gt", after);
        bson_append_document_end(&filter, &gt);
        cJSON *page = NULL;
        store_status st = store_find(COLL_EVENT_QUEUE, &filter, "_id", QUEUE_PAGE, &page);
        bson_destroy(&filter);
        if (st != ST_OK) break;
        more = cJSON_GetArraySize(page) == QUEUE_PAGE;
        for (const cJSON *q = page->child; q; q = q->next) {
            const char *qid = json_get_str(q, "id");
            snprintf(after, sizeof after, "%s", qid);
            if (group_active(qid) || is_busy(qid)) continue;
            if (!fanout_one(q, now, at, hooks)) {
                more = false;
                break;
            }
            if (sender_waiting() >= BATCH) {
                /* the rest when the sender has room again */
                fanout_backlog = q->next != NULL || more;
                more = false;
                break;
            }
        }
        cJSON_Delete(page);
    }
}
