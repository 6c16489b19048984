/* notify: outgoing webhooks (Standard Webhooks). Subscriptions are a resource
 * (/v1/webhooks); every committed change that emits an event was queued with it
 * (store_write), and the delivery thread claims each queued event, sends its
 * first attempts from memory with libcurl multi under the claim's lease, signs
 * each attempt, retries on the schedule under shard leases (several instances
 * never send the same attempt within a lease), and records every attempt in its
 * delivery. See service/notify/delivery.c. */
#ifndef SUBREG_NOTIFY_H
#define SUBREG_NOTIFY_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "subreg/http.h"

typedef struct {
    bool allow_http;
    const netpolicy *allow_nets; /* non-public addresses webhooks may reach anyway */
    const char *retry_schedule;
    int timeout_ms;
    int disable_after_s;
    int rotation_overlap_s;
    int poll_ms;
    int concurrency;          /* attempts in flight per instance */
    int endpoint_concurrency; /* ... and per subscription */
    int lease_ms;
    const char *public_base_url;
    bool exit_after_fanout_record; /* test fault: _exit(98) once a fan-out's first results are recorded */
} notify_settings;

/* Validates the settings (the retry schedule); false with a message naming the variable. */
bool notify_init(const notify_settings *s, char *err, size_t errlen);
void notify_start(void);
void notify_stop(void);
int notify_routes(route *out, int cap);
void notify_metrics(strbuf *out);
/* The webhook URL policy for a subscription being written (the descriptor's
 * io_check): resolves the host; answers 422 and returns false when refused. */
bool notify_check_url(req *r, const cJSON *before, const cJSON *doc);
/* Tells the delivery thread that a subscription changed (reload its copy). */
void notify_webhooks_changed(void);
/* Milliseconds since the delivery thread last completed a round (readiness). */
int64_t notify_idle_ms(void);

#endif
