/* The delivery thread (this file: the tick, the groups in memory, housekeeping,
 * start and stop). The thread never waits for a receiver: each tick moves the
 * transfers in flight on (send.c), writes what finished, and every poll
 * interval looks for new work:
 *   1. fan-out (fanout.c): every queued event (event_queue, written with its
 *      change by doc_write → store_write) whose audit record is committed is
 *      claimed (its event document, a unique insert) and its first attempts are
 *      queued at once, one per matching enabled subscription, straight from
 *      memory; their results are written in bulk as they finish. The claim is a
 *      lease, renewed while attempts are outstanding; if it lapses (crash,
 *      database away) one instance takes over and sends what was not recorded.
 *      Then the entry leaves the queue;
 *   2. retries (retry.c): a failed first attempt leaves a due entry. Due entries
 *      are split into shards; an instance claims a shard for the current period
 *      by inserting {shard, period} (a unique _id), so exactly one instance
 *      sends a shard's attempts within a lease;
 *   3. sending (send.c) and recording (record.c): attempts go out through one
 *      libcurl multi handle, signed, with the address actually connected to
 *      checked against the network policy, none started that could outlive its
 *      lease. Each subscription has a lane of at most endpoint_concurrency
 *      attempts in flight: a hanging or slow receiver fills only its own lane
 *      (further first attempts to it become due entries and wait their turn), so
 *      it delays no other subscription. Results are written in bulk: the attempt
 *      log, the next attempt (retry schedule with jitter, Retry-After honoured),
 *      the subscription's health (410 or failing for too long disables it).
 * A crash between sending and recording means the attempt is sent again later:
 * at-least-once, with the same webhook-id. */
#define _GNU_SOURCE
#include <malloc.h>
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

/* ---- the groups in memory ------------------------------------------------------- */

static group *groups;

group *group_new(bool fanout, int n)
{
    group *g = xcalloc(1, sizeof *g);
    g->fanout = fanout;
    g->jobs = xcalloc((size_t)n + 1, sizeof *g->jobs);
    g->ready = xcalloc((size_t)n + 1, sizeof *g->ready);
    g->next = groups;
    groups = g;
    return g;
}

void group_start(group *g)
{
    g->pending = g->n;
    for (int i = 0; i < g->n; i++) {
        if (g->jobs[i].deferred) {
            lane_defer(g->jobs[i].hook_id);
            job_done(&g->jobs[i]);
        } else {
            sender_queue(&g->jobs[i]);
        }
    }
}

void job_done(job *j)
{
    group *g = j->group;
    g->pending--;
    if (j->unsent) {
        g->incomplete = true; /* a fan-out not fully sent is not finished: the claim lapses, it is taken over */
        return;
    }
    g->sent += !j->deferred;
    g->deferred += j->deferred;
    g->flush = g->flush || j->deferred;
    if (g->nready == 0) g->first_ready = mono_ms();
    g->ready[g->nready++] = j;
}

bool group_active(const char *qid)
{
    for (group *g = groups; g; g = g->next)
        if (g->fanout && !strcmp(g->qid, qid)) return true;
    return false;
}

cJSON *jobs_in_memory(void)
{
    cJSON *ids = cJSON_CreateArray();
    for (group *g = groups; g; g = g->next)
        if (!g->fanout)
            for (int i = 0; i < g->n; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(g->jobs[i].id));
    return ids;
}

static void group_free(group *g)
{
    for (int i = 0; i < g->n; i++) {
        if (g->jobs[i].deferred && !g->jobs[i].written) lane_written(g->jobs[i].hook_id);
        job_clear(&g->jobs[i]);
    }
    free(g->jobs);
    free(g->ready);
    free(g->qid);
    free(g->body);
    cJSON_Delete(g->owned);
    free(g);
}

/* Keeps fan-out claims alive, writes what finished (all of a group at once, or
 * what waited RECORD_DELAY_MS), and retires groups with nothing outstanding. */
static void groups_tick(const hook_index *hooks)
{
    int64_t mono = mono_ms();
    for (group **p = &groups; *p;) {
        group *g = *p;
        if (g->fanout && !g->lost && g->pending > 0 && mono - g->renewed > notify_cfg.lease_ms / 4 &&
            !renew_fanout(g)) {
            g->lost = true;
            sender_drop_waiting(g);
        }
        if (g->nready > 0 && !g->lost &&
            (g->pending == 0 || g->flush || g->nready >= RECORD_BATCH || mono - g->first_ready >= RECORD_DELAY_MS)) {
            if (record_results(g->ready, g->nready, hooks, now_ms(), g->fanout) == ST_OK) {
                if (g->fanout && notify_cfg.exit_after_fanout_record) _exit(98);
                for (int i = 0; i < g->nready; i++) {
                    g->ready[i]->written = true;
                    if (g->ready[i]->deferred) lane_written(g->ready[i]->hook_id);
                }
                g->nready = 0;
                g->flush = false;
            } else {
                g->lost = true;
                sender_drop_waiting(g);
            }
        }
        if (g->pending > 0 || (g->nready > 0 && !g->lost)) {
            p = &g->next;
            continue;
        }
        if (g->fanout && !g->lost && !g->incomplete) finish_fanout(g);
        *p = g->next;
        bool large = g->n >= 1000;
        group_free(g);
        if (large) malloc_trim(0); /* a large fan-out's memory goes back, not kept by this thread's arena */
    }
}

/* ---- the tick ---------------------------------------------------------------- */

static int64_t next_scan; /* mono ms of the next look for new work */
static const hook_index *hooks; /* as of the last look */

static int notify_round(void *arg)
{
    (void)arg;
    static int rounds;
    int64_t mono = mono_ms();
    /* Look for work every poll interval unless attempts are already waiting
     * for a slot (what a look finds would wait behind them, and its queries
     * would take the thread from sending), and at once when a look stopped for
     * want of room that is free again. */
    if ((mono >= next_scan && sender_waiting() == 0) || (due_backlog && sender_room() > 0) ||
        (fanout_backlog && sender_waiting() < BATCH)) {
        int64_t now = now_ms();
        if (rounds++ % 20 == 0) housekeeping(now);
        /* Read once per look, idle or not: an event's fan-out never waits for
         * thousands of subscriptions to load. */
        hooks = cached_hooks();
        if (hooks) {
            fanout_round(now, hooks);
            deliver_due(now_ms(), hooks);
        }
        next_scan = mono_ms() + notify_cfg.poll_ms;
    }
    /* Wait for the sockets until the next look (none while attempts wait for a
     * slot: looks are skipped then); never spin on them. */
    int64_t wait = sender_waiting() > 0 ? 50 : next_scan - mono_ms();
    int outstanding = sender_pump(wait < 0 ? 0 : wait > 50 ? 50 : (int)wait);
    if (groups && hooks) groups_tick(hooks);
    /* > 0: run again at once (sender_pump paced it); 0: the worker waits a poll interval */
    return outstanding > 0 || groups ? 1 : 0;
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
    /* Attempts in flight get a moment to end and be written; the rest are
     * abandoned (sent again later, with the same webhook-id). */
    sender_stop(2000);
    if (hooks) groups_tick(hooks);
    for (group *g = groups; g; g = g->next)
        for (int i = 0; i < g->n; i++)
            if (g->jobs[i].easy) sender_abandon(&g->jobs[i]);
    for (group *g = groups, *next; g; g = next) {
        next = g->next;
        group_free(g);
    }
    groups = NULL;
    sender_cleanup();
    forget_busy();
    hooks = NULL;
    next_scan = 0;
    /* A clean stop hands its shards over at once instead of at the lease's end. */
    bson_t mine = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&mine, "owner", instance_id);
    delete_leases(&mine);
    bson_destroy(&mine);
    forget_hooks();
}

