/* delivery.h: what the delivery thread's files share (delivery.c the thread,
 * send.c sending and the metrics, record.c results and the subscription cache,
 * fanout.c first attempts, retry.c due attempts, ping and redelivery). Internal
 * to service/notify. The thread is the only caller of these functions, except
 * deliver_ping and schedule_redelivery (request threads). */
#ifndef SUBREG_NOTIFY_DELIVERY_H
#define SUBREG_NOTIFY_DELIVERY_H

#include <curl/curl.h>
#include <stdint.h>

#include "notify_internal.h"

#define SHARDS 16
#define BATCH 5000
#define RECORD_BATCH 5000    /* results written per bulk insert, at most */
#define RECORD_DELAY_MS 1000 /* a finished attempt waits at most this long for its group's others to be written */
#define LEASE_MARGIN_MS 1000
#define EXCERPT 256

/* This instance, in leases and attempt logs ("host-random"). */
extern char instance_id[40];

/* Counters for /metrics (atomic). */
extern uint64_t m_attempts, m_delivered, m_failed_attempts, m_exhausted, m_retried, m_pending, m_queued, m_lat_us,
    m_deferred;
void count_latency(double ms);

typedef struct group group;

/* One attempt. What it sends is copied (the subscription cache may be reloaded
 * while it waits or runs); body and due belong to its group. */
typedef struct job {
    char *id;       /* delivery id */
    char *event_id;
    char *hook_id;
    char *url;
    cJSON *secrets;
    const char *body;
    int attempt;    /* number of this attempt */
    const cJSON *due; /* its due entry */
    cJSON *prior;   /* its delivery document when an earlier attempt made one (owned) */
    group *group;
    bool deferred;  /* not sent: its subscription's lane was full; recorded as a due entry */
    bool unsent;    /* not sent: its group's lease could not cover it; not recorded */
    bool written;   /* its result is recorded */
    struct job *next_waiting;
    CURL *easy;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
    char refused[96];
    char excerpt[EXCERPT + 1];
    size_t excerpt_len;
    char retry_after[64];
    long status;
    double latency_ms;
    int64_t sent_ms;
} job;

/* Attempts that go out together: a fan-out (an event's first attempts, under
 * the event's claim) or a batch of due attempts (under shard leases). Owned by
 * delivery.c; the sender reports each job back through job_done. */
struct group {
    bool fanout;
    char *qid;            /* fan-out: the queued event */
    char *body;           /* fan-out: its payload */
    cJSON *owned;         /* what the jobs point into (due entries, events) */
    job *jobs;
    int n, pending;       /* jobs, and those not finished */
    job **ready;          /* finished, not recorded yet */
    int nready;
    int64_t first_ready;  /* mono ms */
    int64_t start_until;  /* mono ms: no job starts at or after it (its lease less the timeout) */
    int64_t lease_end, renewed, started; /* fan-out: the claim (mono ms) */
    int sent, deferred;
    bool lost;            /* its lease may lapse or a write failed: start and record nothing more */
    bool incomplete;      /* a job was not sent: a fan-out is not finished (it is taken over later) */
    bool flush;           /* a deferred job is ready: write it at once (its lane's backlog counts it) */
    group *next;
};

/* A job's fields copied from a due entry, its subscription and a body. */
void job_init(job *j, const cJSON *due, const cJSON *hook, const char *body, int attempt);
void job_clear(job *j);

/* The sender: one libcurl multi handle, at most notify_cfg.concurrency attempts
 * in flight, at most notify_cfg.endpoint_concurrency per subscription (its
 * lane). sender_queue starts a job at once when there is room, else it waits
 * (in order). A waiting job whose lane is full when its turn comes is deferred
 * (fan-out) and one whose group is lost or past start_until is unsent. */
void sender_queue(job *j);
/* Starts waiting jobs, moves transfers on, waits up to wait_ms for sockets,
 * and reports finished jobs (job_done). Returns jobs in flight or waiting. */
int sender_pump(int wait_ms);
int sender_room(void);               /* free global slots, waiting jobs counted */
int sender_waiting(void);
int lane_room(const char *hook_id);  /* free slots of a subscription */
bool lane_backlog(const char *hook_id); /* first attempts were deferred lately */
void lane_defer(const char *hook_id);   /* a first attempt deferred, not written yet */
void lane_written(const char *hook_id); /* ... now written (or dropped) */
void lane_clear_backlog(const char *hook_id);
/* Subscriptions with a full lane (their due attempts are not read), and those
 * with a backlog that may be over (cleared when none of theirs is due). */
cJSON *full_lanes(void);
cJSON *backlog_lanes(void);
/* Marks the waiting jobs of g (NULL: all) unsent. */
void sender_drop_waiting(group *g);
/* At stop: starts nothing more and waits up to ms for attempts in flight;
 * sender_abandon drops one still in flight (it is sent again later, with the
 * same webhook-id); sender_cleanup frees the rest. */
void sender_stop(int ms);
void sender_abandon(job *j);
void sender_cleanup(void);
void job_done(job *j); /* delivery.c */

/* Sends one job now (ping), outside the sender. */
void send_now(job *j);

/* The groups in memory (delivery.c). */
group *group_new(bool fanout, int n);
void group_start(group *g);  /* queues its jobs (deferred ones are finished at once) */
bool group_active(const char *qid);
bool job_in_memory(const char *delivery_id);
/* ids of due entries whose attempts are in memory */
cJSON *jobs_in_memory(void);

/* Subscriptions by id: thousands of them are looked up per round. */
typedef struct {
    const cJSON **v;
    int n;
} hook_index;
hook_index index_hooks(const cJSON *hooks);
const cJSON *find_hook(const hook_index *ix, const char *id);
/* The subscriptions, indexed (reloaded when the change token moved); NULL when
 * none could be loaded yet. forget_hooks drops the copy (at stop). */
const hook_index *cached_hooks(void);
void forget_hooks(void);

/* Writes what the attempts learned: delivery documents, the next due entries,
 * the subscriptions' health. direct: the jobs' due entries exist only in memory
 * (a fan-out's first attempts). */
store_status record_results(job **jobs, int n, const hook_index *hooks, int64_t now, bool direct);

/* An attempt's entry in its delivery's log; a delivery document as its first
 * attempt (or a cancellation) creates it. */
cJSON *attempt_entry(const job *j, const char *at);
cJSON *delivery_doc(const cJSON *due, const char *at);

int shard_of(const char *id);
cJSON *due_entry(const char *event_id, const char *type, const char *hook_id, const char *at, int64_t now,
                 int attempts);
store_status put_event(const char *event_id, const char *type, const char *body, const char *at, int64_t now,
                       bool fanned_out);
store_status put_lease(const char *id, int64_t period, const char *at);
/* Keeps a fan-out's claim alive; false when it may have lapsed. */
bool renew_fanout(group *g);
/* A fan-out's jobs all finished and recorded: the event is done. */
void finish_fanout(group *g);

/* A look's two halves: fan-out of queued events, then due attempts of the
 * shards this instance holds; each hands what it finds to the sender. */
void fanout_round(int64_t now, const hook_index *hooks);
void forget_busy(void); /* at stop */
/* fanout_round stopped with events left for want of room in the sender. */
extern bool fanout_backlog;
void deliver_due(int64_t now, const hook_index *hooks);
/* deliver_due left due attempts for want of a free slot in the sender. */
extern bool due_backlog;

#endif
