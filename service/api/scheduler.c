#define _GNU_SOURCE
/* The publication scheduler: a thread that records, exactly once across
 * instances, when a version takes effect (the write claim on its next version)
 * and rebuilds the public snapshot when what is in effect changes. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "publish_internal.h"
#include "subreg/api.h"
#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"
#include "subreg/resource.h"
#include "subreg/worker.h"

/* ---- the scheduler thread -------------------------------------------------- */

static worker sched;
static int sched_poll_ms;
static char pubs_token[40]; /* the "publications" stamp the snapshot was built at */
static bool reload = true;  /* a load or a recorded effect failed: load again */

/* After every write of a publication (the descriptor's after_write), on any
 * instance: every scheduler reloads at its next round. */
void publications_changed(void)
{
    store_stamp_bump("publications");
    worker_kick(&sched);
}

/* Records "took effect" once per publication: the write claim on the version
 * makes it exactly once across instances. */
static void record_effective(cJSON *pub, int64_t now)
{
    const char *id = json_get_str(pub, "id");
    char at[32];
    format_rfc3339(now, at);
    cJSON *after = cJSON_Duplicate(pub, 1);
    cJSON_AddStringToObject(after, "effective_recorded_at", at);
    char *rid = new_id("sched_");
    store_status st = doc_write(&RES_PUBLICATION, &(write_origin){ACTOR_SCHEDULER, rid, now}, "effective", id, pub,
                                after, NULL);
    if (st == ST_OK) log_msgf(LOG_INFO, "publication %s took effect", id);
    if (st != ST_OK && st != ST_STALE) reload = true;
    if (st != ST_OK && st != ST_STALE) log_msgf(LOG_WARN, "publication %s: recording its effect failed (%s)", id, store_status_name(st));
    free(rid);
    cJSON_Delete(after);
}

/* A round reads one small stamp; the publications (which grow with history) are
 * read only when the stamp moved, a version's effective time came, or the last
 * round could not finish. */
static void refresh(void)
{
    char token[40];
    if (store_stamp_read("publications", token, sizeof token) != ST_OK) return;
    snapshot *held = snapshot_get();
    bool due = !held || (held->next_change_ms && held->next_change_ms <= now_ms());
    snapshot_release(held);
    if (!reload && !due && strcmp(token, pubs_token) == 0) return;
    cJSON *pubs = NULL;
    reload = true;
    if (load_publications(&pubs, true) != ST_OK) return; /* keep serving the last snapshot */
    snprintf(pubs_token, sizeof pubs_token, "%s", token);
    reload = false;
    int64_t now = now_ms();
    /* A replaced announcement never takes effect: no record, no publication.effective. */
    for (cJSON *p = pubs->child; p; p = p->next)
        if (ts_ms(p, "effective_at") <= now && !json_get(p, "effective_recorded_at") && !publication_replaced_by(pubs, p))
            record_effective(p, now);
    snapshot *cur = snapshot_get();
    const cJSON *in_effect = publication_in_effect(pubs, now);
    const cJSON *last = cJSON_GetArrayItem(pubs, cJSON_GetArraySize(pubs) - 1);
    int current = in_effect ? (int)cJSON_GetNumberValue(json_get(in_effect, "number")) : 0;
    int latest = last ? (int)cJSON_GetNumberValue(json_get(last, "number")) : 0;
    if (!cur || cur->current != current || cur->latest != latest) {
        snapshot_swap(build_snapshot(pubs, now, cur));
        log_msgf(LOG_INFO, "public list: version %d in effect, %d published", current, latest);
    }
    snapshot_release(cur);
    cJSON_Delete(pubs);
    malloc_trim(0); /* the publications read for this round were the largest allocation */
}

static int sched_round(void *arg)
{
    (void)arg;
    refresh();
    return 0;
}

/* Wake at the poll interval, or earlier when a version takes effect. */
static int64_t sched_wait(void *arg)
{
    (void)arg;
    int64_t wait = sched_poll_ms;
    snapshot *s = snapshot_get();
    if (s && s->next_change_ms) {
        int64_t until = s->next_change_ms - now_ms();
        if (until < wait) wait = until < 1 ? 1 : until;
    }
    snapshot_release(s);
    return wait;
}

void publish_start(int poll_ms)
{
    sched_poll_ms = poll_ms;
    /* Serve the public list from the first request on (if the database answers). */
    refresh();
    sched = (worker){.round = sched_round, .wait_ms = sched_wait, .interval_ms = poll_ms};
    worker_start(&sched);
}

void publish_stop(void)
{
    worker_stop(&sched);
    snapshot_swap(NULL);
}

