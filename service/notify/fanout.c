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

/* CPU time of this thread (the fan-out's log line). */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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

/* Keeps the fan-out's claim alive; false when it may have lapsed or the
 * database is away (then stop sending: another owner may take over). */
static bool renew_fanout(const char *qid, int64_t *lease_end)
{
    int64_t mono = mono_ms();
    if (mono >= *lease_end) return false;
    cJSON *set = cJSON_CreateObject();
    cJSON_AddNumberToObject(set, "_fanout_ms", (double)now_ms());
    store_status st = store_update(RES_EVENT.collection, qid, set);
    cJSON_Delete(set);
    if (st != ST_OK) return false;
    *lease_end = mono + notify_cfg.lease_ms - LEASE_MARGIN_MS;
    return true;
}

/* Sends the first attempts of one claimed event, straight from memory: no due
 * entry is written for an attempt that succeeds. Sending runs in slices of at
 * most RECORD_DELAY_MS of starts; after each slice the results are written in
 * bulk. A fast fan-out is thus written once, after its last attempt (not
 * competing with it for the CPU); a slow one as it goes. True when every
 * attempt was sent and recorded. */
static bool send_fanout(const char *qid, cJSON *due, const char *body, const hook_index *hooks, int64_t lease_end)
{
    int total = cJSON_GetArraySize(due), k = 0;
    if (total == 0) return true;
    job *jobs = xcalloc((size_t)total, sizeof *jobs);
    cJSON **dues = xcalloc((size_t)total, sizeof *dues), **prior = xcalloc((size_t)total, sizeof *prior);
    for (cJSON *e = due->child; e; e = e->next) {
        const cJSON *hook = find_hook(hooks, json_get_str(e, "webhook_id"));
        if (!hook) continue;
        dues[k] = e;
        jobs[k++] = (job){.id = json_get_str(e, "id"), .event_id = qid, .url = json_get_str(hook, "url"),
                          .secrets = json_get(hook, "_secrets"), .body = body, .attempt = 1};
    }
    int64_t t0 = mono_ms(), renewed = t0, send_ms = 0, send_cpu_us = 0;
    int sent = 0, recorded = 0;
    bool ok = true;
    while (ok && recorded < k) {
        if (sent < k && mono_ms() - renewed > notify_cfg.lease_ms / 4) {
            ok = renew_fanout(qid, &lease_end);
            renewed = mono_ms();
            if (!ok) break;
        }
        int64_t until = lease_end - notify_cfg.timeout_ms, slice = mono_ms() + RECORD_DELAY_MS;
        int64_t ts = mono_ms(), cs = thread_cpu_us();
        int n = sent < k ? send_all(jobs + sent, k - sent, until < slice ? until : slice) : 0;
        send_ms += mono_ms() - ts;
        send_cpu_us += thread_cpu_us() - cs;
        if (n == 0 && sent < k) renewed = 0; /* the lease is nearly up: renew before going on */
        sent += n;
        while (ok && recorded < sent) {
            int m = sent - recorded < RECORD_BATCH ? sent - recorded : RECORD_BATCH;
            ok = record_results(jobs + recorded, dues + recorded, prior + recorded, m, hooks, now_ms(), true) == ST_OK;
            if (ok && notify_cfg.exit_after_fanout_record) _exit(98);
            recorded += ok ? m : 0;
        }
    }
    log_msgf(LOG_DEBUG, "fan-out of %s: %d of %d attempts sent in %lld ms (%lld ms CPU), recorded in %lld ms", qid,
             sent, k, (long long)send_ms, (long long)(send_cpu_us / 1000), (long long)(mono_ms() - t0 - send_ms));
    free(prior);
    free(dues);
    free(jobs);
    return ok && recorded == k;
}

int fanout_round(int64_t now, const hook_index *hooks)
{
    bson_t filter = BSON_INITIALIZER;
    cJSON *queue = NULL;
    if (store_find(COLL_EVENT_QUEUE, &filter, "queued_ms", 200, &queue) != ST_OK) {
        bson_destroy(&filter);
        return 0;
    }
    bson_destroy(&filter);
    int fanned = 0;
    char at[32];
    format_rfc3339(now, at);
    for (const cJSON *q = queue->child; q; q = q->next) {
        const char *qid = json_get_str(q, "id");
        cJSON *rec = NULL;
        store_status st = store_get(COLL_AUDIT, qid, &rec);
        if (st == ST_NOT_FOUND) {
            /* An event is queued after its audit record (store.h): without one
             * it cannot be sent, and holds up no other. */
            log_msgf(LOG_WARN, "queued event %s has no audit record; dropped", qid);
            store_delete(COLL_EVENT_QUEUE, qid);
            continue;
        }
        if (st != ST_OK) break;
        cJSON *ev = webhook_event_from_audit(rec, notify_cfg.public_base_url);
        if (!ev) {
            store_delete(COLL_EVENT_QUEUE, qid); /* emits nothing */
            cJSON_Delete(rec);
            continue;
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
        bool finished = fc == FANOUT_DONE;
        if (fc == FANOUT_MINE || fc == FANOUT_TAKEN_OVER) {
            int nd = cJSON_GetArraySize(due);
            bool sent = (fc == FANOUT_MINE || drop_recorded(qid, due) == ST_OK) &&
                        send_fanout(qid, due, body, hooks, claimed + notify_cfg.lease_ms - LEASE_MARGIN_MS);
            if (sent) {
                cJSON *set = cJSON_CreateObject();
                cJSON_AddStringToObject(set, "_fanout", "done");
                finished = store_update(RES_EVENT.collection, qid, set) == ST_OK;
                cJSON_Delete(set);
            }
            log_msgf(LOG_DEBUG, "fan-out of %s (queued %lld ms before): %d subscriptions, %d to send, %s in %lld ms",
                     qid, (long long)(now - (int64_t)cJSON_GetNumberValue(json_get(q, "queued_ms"))), nd,
                     cJSON_GetArraySize(due), finished ? "done" : "not finished", (long long)(mono_ms() - claimed));
            fanned += cJSON_GetArraySize(due);
        }
        /* Busy: another instance is on it. Not finished: the claim lapses and
         * this or another instance takes over. Either way the entry stays. */
        if (finished) store_delete(COLL_EVENT_QUEUE, qid);
        cJSON_Delete(due);
        free(body);
        cJSON_Delete(ev);
        cJSON_Delete(rec);
        if (fc == FANOUT_ERROR) break;
    }
    cJSON_Delete(queue);
    return fanned;
}

