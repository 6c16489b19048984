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
#define RECORD_BATCH 5000    /* fan-out: results written per bulk insert, at most */
#define RECORD_DELAY_MS 1000 /* fan-out: attempts started between two writes of results */
#define LEASE_MARGIN_MS 1000
#define EXCERPT 256

/* This instance, in leases and attempt logs ("host-random"). */
extern char instance_id[40];

/* Counters for /metrics (atomic). */
extern uint64_t m_attempts, m_delivered, m_failed_attempts, m_exhausted, m_retried, m_pending, m_queued, m_lat_us;
void count_latency(double ms);

/* One attempt in flight. */
typedef struct {
    const char *id;        /* delivery id */
    const char *event_id;
    const char *url;
    const cJSON *secrets;
    const char *body;
    int attempt;           /* number of this attempt */
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

/* Sends jobs through libcurl multi; starts none after start_until (a lease's end
 * less the timeout). Returns how many were sent. */
int send_all(job *jobs, int n, int64_t start_until);

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
 * the subscriptions' health. dues/prior: the due entries and earlier delivery
 * documents of the jobs (NULL entries for first attempts). */
store_status record_results(job *jobs, cJSON **dues, cJSON **prior, int n, const hook_index *hooks, int64_t now,
                            bool direct);

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

/* A round's two halves: fan-out of queued events, then due attempts of the
 * shards this instance holds. Each returns how many attempts it sent. */
int fanout_round(int64_t now, const hook_index *hooks);
int deliver_due(int64_t now, const hook_index *hooks);

#endif
