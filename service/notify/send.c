/* Sending attempts: libcurl multi, signed (Standard Webhooks), the address
 * connected to checked against the network policy; and the metrics. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "subreg/collections.h"
#include "subreg/json.h"
#include "subreg/log.h"

/* ---- metrics --------------------------------------------------------------- */

uint64_t m_attempts, m_delivered, m_failed_attempts, m_exhausted, m_retried, m_pending, m_queued, m_lat_us;
static const double LAT_BUCKETS[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 15};
static uint64_t m_lat_hist[8];

void count_latency(double ms)
{
    size_t b = 0;
    while (b < 7 && ms / 1000.0 > LAT_BUCKETS[b]) b++;
    __atomic_add_fetch(&m_lat_hist[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m_lat_us, (uint64_t)(ms * 1000), __ATOMIC_RELAXED);
}

void notify_metrics(strbuf *out)
{
#define LOAD(x) (unsigned long long)__atomic_load_n(&(x), __ATOMIC_RELAXED)
    sb_printf(out,
              "# HELP subreg_webhook_events_queued Changes whose event is not fanned out yet.\n"
              "# TYPE subreg_webhook_events_queued gauge\nsubreg_webhook_events_queued %llu\n"
              "# HELP subreg_webhook_deliveries_pending Deliveries waiting for a retry.\n"
              "# TYPE subreg_webhook_deliveries_pending gauge\nsubreg_webhook_deliveries_pending %llu\n"
              "# HELP subreg_webhook_attempts_total Delivery attempts sent.\n"
              "# TYPE subreg_webhook_attempts_total counter\nsubreg_webhook_attempts_total %llu\n"
              "# HELP subreg_webhook_delivered_total Deliveries answered with 2xx.\n"
              "# TYPE subreg_webhook_delivered_total counter\nsubreg_webhook_delivered_total %llu\n"
              "# HELP subreg_webhook_failed_attempts_total Attempts that failed (non-2xx, timeout, refused).\n"
              "# TYPE subreg_webhook_failed_attempts_total counter\nsubreg_webhook_failed_attempts_total %llu\n"
              "# HELP subreg_webhook_retried_total Attempts after the first.\n"
              "# TYPE subreg_webhook_retried_total counter\nsubreg_webhook_retried_total %llu\n"
              "# HELP subreg_webhook_failed_total Deliveries given up (schedule exhausted, 410, disabled).\n"
              "# TYPE subreg_webhook_failed_total counter\nsubreg_webhook_failed_total %llu\n"
              "# HELP subreg_webhook_latency_seconds Time from sending an attempt to its answer.\n"
              "# TYPE subreg_webhook_latency_seconds histogram\n",
              LOAD(m_queued), LOAD(m_pending), LOAD(m_attempts), LOAD(m_delivered), LOAD(m_failed_attempts), LOAD(m_retried),
              LOAD(m_exhausted));
    unsigned long long cum = 0;
    for (int b = 0; b < 7; b++) {
        cum += LOAD(m_lat_hist[b]);
        sb_printf(out, "subreg_webhook_latency_seconds_bucket{le=\"%g\"} %llu\n", LAT_BUCKETS[b], cum);
    }
    cum += LOAD(m_lat_hist[7]);
    sb_printf(out, "subreg_webhook_latency_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    sb_printf(out, "subreg_webhook_latency_seconds_sum %.6f\nsubreg_webhook_latency_seconds_count %llu\n",
              (double)LOAD(m_lat_us) / 1e6, cum);
#undef LOAD
}

/* ---- sending ------------------------------------------------------------- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    job *j = clientp;
    const char *why = netpolicy_refuse(&webhook_nets, &a->addr);
    if (why) {
        snprintf(j->refused, sizeof j->refused, "refused address (%s)", why);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    job *j = ctx;
    size_t len = size * n, room = EXCERPT - j->excerpt_len;
    size_t take = len < room ? len : room;
    memcpy(j->excerpt + j->excerpt_len, data, take);
    j->excerpt_len += take;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    job *j = ctx;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        size_t v = len - 12;
        if (v >= sizeof j->retry_after) v = sizeof j->retry_after - 1;
        memcpy(j->retry_after, data + 12, v);
        j->retry_after[v] = '\0';
        j->retry_after[strcspn(j->retry_after, "\r\n")] = '\0';
    }
    return len;
}

/* Signatures with every secret still valid (two during a rotation). */
static void sign_all(const cJSON *secrets, const char *msg_id, int64_t ts, const char *body, strbuf *out)
{
    char at[32];
    format_rfc3339(now_ms(), at);
    for (const cJSON *s = secrets ? secrets->child : NULL; s; s = s->next) {
        const char *exp = json_get_str(s, "expires_at");
        if (exp && strcmp(exp, at) <= 0) continue;
        char sig[128];
        if (!webhook_sign(json_get_str(s, "secret"), msg_id, ts, body, strlen(body), sig, sizeof sig)) continue;
        if (out->len) sb_puts(out, " ");
        sb_puts(out, sig);
    }
}

static void job_prepare(job *j)
{
    int64_t ts = now_ms() / 1000;
    strbuf h = {0};
    j->headers = curl_slist_append(NULL, "Content-Type: application/json");
    sb_printf(&h, "webhook-id: %s", j->event_id);
    j->headers = curl_slist_append(j->headers, h.data);
    h.len = 0;
    sb_printf(&h, "webhook-timestamp: %lld", (long long)ts);
    j->headers = curl_slist_append(j->headers, h.data);
    strbuf sigs = {0};
    sign_all(j->secrets, j->event_id, ts, j->body, &sigs);
    h.len = 0;
    sb_printf(&h, "webhook-signature: %s", sigs.data ? sigs.data : "");
    j->headers = curl_slist_append(j->headers, h.data);
    j->headers = curl_slist_append(j->headers, "Expect:");
    sb_free(&sigs);
    sb_free(&h);
    CURL *e = curl_easy_init();
    j->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "subreg-webhooks/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)notify_cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(notify_cfg.timeout_ms < 5000 ? notify_cfg.timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* never through a proxy from the environment (http_proxy, ALL_PROXY...): the
     * address check at connect time would see the proxy, not the target */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, notify_cfg.allow_http ? "http,https" : "https");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    j->sent_ms = mono_ms();
}

static void job_finish(job *j, CURLcode rc)
{
    j->latency_ms = (double)(mono_ms() - j->sent_ms);
    if (rc == CURLE_OK) curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->status);
    else if (!j->error[0]) snprintf(j->error, sizeof j->error, "%s", curl_easy_strerror(rc));
    if (j->refused[0]) snprintf(j->error, sizeof j->error, "%s", j->refused);
    curl_slist_free_all(j->headers);
    curl_easy_cleanup(j->easy);
    j->headers = NULL;
    j->easy = NULL;
    __atomic_add_fetch(&m_attempts, 1, __ATOMIC_RELAXED);
    if (j->attempt > 1) __atomic_add_fetch(&m_retried, 1, __ATOMIC_RELAXED);
    count_latency(j->latency_ms);
}

/* Sends jobs in order, at most notify_cfg.concurrency at once, and returns how many it
 * sent (all of them answered or timed out). No job is started at or after
 * start_until (monotonic ms; 0: no limit): a caller holding a lease passes its
 * end less the timeout, so every attempt it sends ends within the lease. */
int send_all(job *jobs, int n, int64_t start_until)
{
    CURLM *m = curl_multi_init();
    int next = 0, running = 0;
    while (next < n || running > 0) {
        while (next < n && running < notify_cfg.concurrency && (!start_until || mono_ms() < start_until)) {
            job_prepare(&jobs[next]);
            curl_multi_add_handle(m, jobs[next].easy);
            next++;
            running++;
        }
        if (running == 0) break; /* start_until came before the rest */
        int still = 0;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            job *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, msg->easy_handle);
            job_finish(j, rc);
            running--;
        }
        if (running > 0) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    curl_multi_cleanup(m);
    return next;
}

