/* The delivery thread (this file: the round, housekeeping, start and stop).
 * Each round:
 *   1. fan-out (fanout.c): every queued event (event_queue, written with its
 *      change by doc_write → store_write) whose audit record is committed is claimed (its event
 *      document, a unique insert) and its first attempts go out at once, one per
 *      matching enabled subscription, straight from memory; their results are
 *      written in bulk after each slice of sending. The claim is a lease,
 *      renewed while sending; if it lapses (crash, database away) one instance
 *      takes over and sends what was not recorded. Then the entry leaves the queue;
 *   2. retries (retry.c): a failed first attempt leaves a due entry. Due entries are split
 *      into shards; an instance claims a shard for the current period by
 *      inserting {shard, period} (a unique _id), so exactly one instance sends a
 *      shard's attempts within a lease;
 *   3. sending (send.c) and recording (record.c): attempts go out through libcurl multi, signed, with the address
 *      actually connected to checked against the network policy, none started
 *      that could outlive the lease; results are written in bulk: the attempt
 *      log, the next attempt (retry schedule with jitter, Retry-After honoured),
 *      the subscription's health (410 or failing for too long disables it).
 * A crash between sending and recording means the attempt is sent again later:
 * at-least-once, with the same webhook-id. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/worker.h"

char instance_id[40];

/* ---- the thread ---------------------------------------------------------- */

static worker w;

int64_t notify_idle_ms(void)
{
    return worker_idle_ms(&w);
}

/* Deletes the leases that filter selects. */
static void delete_leases(bson_t *filter)
{
    cJSON *leases = NULL;
    if (store_find(COLL_DELIVERY_LEASES, filter, NULL, 1000, &leases) != ST_OK) return;
    cJSON *ids = cJSON_CreateArray();
    for (cJSON *l = leases->child; l; l = l->next) cJSON_AddItemToArray(ids, cJSON_CreateString(json_get_str(l, "id")));
    store_delete_ids(COLL_DELIVERY_LEASES, ids);
    cJSON_Delete(ids);
    cJSON_Delete(leases);
}

/* Every twentieth round: the backlog gauges, and old leases removed. */
static void housekeeping(int64_t now)
{
    bson_t all = BSON_INITIALIZER;
    int64_t pending = 0;
    if (store_count(COLL_DELIVERY_DUE, &all, &pending) == ST_OK) __atomic_store_n(&m_pending, (uint64_t)pending, __ATOMIC_RELAXED);
    if (store_count(COLL_EVENT_QUEUE, &all, &pending) == ST_OK) __atomic_store_n(&m_queued, (uint64_t)pending, __ATOMIC_RELAXED);
    bson_destroy(&all);
    bson_t old = BSON_INITIALIZER, sub;
    BSON_APPEND_DOCUMENT_BEGIN(&old, "period", &sub);
    BSON_APPEND_DOUBLE(&sub, "$lt", (double)(now / notify_cfg.lease_ms - 10));
    bson_append_document_end(&old, &sub);
    delete_leases(&old);
    bson_destroy(&old);
}

static int notify_round(void *arg)
{
    (void)arg;
    static int rounds;
    int64_t now = now_ms();
    if (rounds++ % 20 == 0) housekeeping(now);
    /* Read once per round, idle or not: an event's fan-out never waits for
     * thousands of subscriptions to load. */
    const hook_index *hooks = cached_hooks();
    if (!hooks) return 0; /* the database is away: next round */
    return fanout_round(now, hooks) + deliver_due(now_ms(), hooks);
}

static bool emits_event(const cJSON *record)
{
    cJSON *ev = webhook_event_from_audit(record, "");
    bool yes = ev != NULL;
    cJSON_Delete(ev);
    return yes;
}

bool notify_init(const notify_settings *s, char *err, size_t errlen)
{
    notify_cfg = *s;
    webhook_nets = *s->allow_nets;
    if (retry_delay(s->retry_schedule, 1) < 0) {
        snprintf(err, errlen, "SUBREG_WEBHOOK_RETRY_SCHEDULE: a comma list of seconds, e.g. 0,5,300");
        return false;
    }
    char host[64];
    gethostname(host, sizeof host);
    char *rnd = new_id("");
    snprintf(instance_id, sizeof instance_id, "%.12s-%.8s", host, rnd + 18);
    free(rnd);
    store_set_event_filter(emits_event);
    return true;
}

void notify_start(void)
{
    w = (worker){.round = notify_round, .interval_ms = notify_cfg.poll_ms};
    worker_start(&w);
}

void notify_stop(void)
{
    if (!w.running) return;
    worker_stop(&w);
    /* A clean stop hands its shards over at once instead of at the lease's end. */
    bson_t mine = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&mine, "owner", instance_id);
    delete_leases(&mine);
    bson_destroy(&mine);
    forget_hooks();
}

