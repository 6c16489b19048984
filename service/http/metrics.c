/* Request metrics: counters per worker thread, summed for /metrics. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <civetweb.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "subreg/http.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/publication.h"


/* ---- metrics ---------------------------------------------------------- */

/* Prometheus' default buckets and 1 ms; 10 s catches requests held by a frozen
 * database (socket timeout). */
static const double BUCKETS[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

/* Counters per worker thread (a slot each, on its own cache line), summed when
 * /metrics is read: shared counters made every request bounce one cache line
 * between the cores. Slots are shared (atomically) beyond MSLOTS threads. */
#define MSLOTS 128
typedef struct {
    uint64_t by_class[6];        /* 1xx..5xx, index = status / 100 */
    uint64_t hist[NBUCKETS + 1]; /* cumulative buckets computed on output */
    uint64_t dur_sum_us;
    uint64_t started, finished; /* requests in begin_request: in flight = started - finished */
} __attribute__((aligned(64))) metric_slot;
static metric_slot mslots[MSLOTS];
static unsigned mslot_next;
static __thread int my_slot = -1;

static metric_slot *slot(void)
{
    if (my_slot < 0) my_slot = (int)(__atomic_fetch_add(&mslot_next, 1, __ATOMIC_RELAXED) % MSLOTS);
    return &mslots[my_slot];
}

void count_request(int status, int64_t dur_ms)
{
    metric_slot *m = slot();
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;
    __atomic_add_fetch(&m->by_class[cls], 1, __ATOMIC_RELAXED);
    double s = (double)dur_ms / 1000.0;
    size_t b = 0;
    while (b < NBUCKETS && s > BUCKETS[b]) b++;
    __atomic_add_fetch(&m->hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->dur_sum_us, (uint64_t)dur_ms * 1000, __ATOMIC_RELAXED);
}

static unsigned long long sum_slots(size_t offset)
{
    unsigned long long t = 0;
    for (int i = 0; i < MSLOTS; i++)
        t += __atomic_load_n((const uint64_t *)((const char *)&mslots[i] + offset), __ATOMIC_ACQUIRE);
    return t;
}

/* Requests between the start and the end of begin_request. Finished is read
 * first, so the result never undercounts: 0 means none was in flight. */
unsigned long long in_flight(void)
{
    unsigned long long done = sum_slots(offsetof(metric_slot, finished));
    return sum_slots(offsetof(metric_slot, started)) - done;
}

unsigned long long requests_started(void)
{
    return sum_slots(offsetof(metric_slot, started));
}

void http_metrics(strbuf *out)
{
    sb_puts(out, "# HELP subreg_http_requests_total HTTP responses by status class.\n"
                 "# TYPE subreg_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        sb_printf(out, "subreg_http_requests_total{code=\"%dxx\"} %llu\n", c,
                  sum_slots(offsetof(metric_slot, by_class) + (size_t)c * sizeof(uint64_t)));
    sb_puts(out, "# HELP subreg_http_request_duration_seconds Time from request to response.\n"
                 "# TYPE subreg_http_request_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += sum_slots(offsetof(metric_slot, hist) + b * sizeof(uint64_t));
        sb_printf(out, "subreg_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", BUCKETS[b], cum);
    }
    cum += sum_slots(offsetof(metric_slot, hist) + NBUCKETS * sizeof(uint64_t));
    sb_printf(out, "subreg_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    sb_printf(out, "subreg_http_request_duration_seconds_sum %.6f\n",
              (double)sum_slots(offsetof(metric_slot, dur_sum_us)) / 1e6);
    sb_printf(out, "subreg_http_request_duration_seconds_count %llu\n", cum);
    unsigned long long busy = in_flight();
    sb_printf(out, "# HELP subreg_http_requests_in_flight Requests being handled now.\n"
                   "# TYPE subreg_http_requests_in_flight gauge\nsubreg_http_requests_in_flight %llu\n",
              busy ? busy - 1 : 0 /* not this one */);
}

void count_started(void)
{
    __atomic_add_fetch(&slot()->started, 1, __ATOMIC_ACQ_REL);
}

void count_finished(void)
{
    __atomic_add_fetch(&slot()->finished, 1, __ATOMIC_ACQ_REL);
}

