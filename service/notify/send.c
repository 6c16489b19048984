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

static int inflight; /* attempts in flight (written by the delivery thread, read by /metrics) */
uint64_t m_attempts, m_delivered, m_failed_attempts, m_exhausted, m_retried, m_pending, m_queued, m_lat_us, m_deferred;
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
              "# HELP subreg_webhook_deferred_total First attempts deferred because their subscription had its limit of attempts in flight.\n"
              "# TYPE subreg_webhook_deferred_total counter\nsubreg_webhook_deferred_total %llu\n"
              "# HELP subreg_webhook_attempts_in_flight Attempts sent and not answered yet.\n"
              "# TYPE subreg_webhook_attempts_in_flight gauge\nsubreg_webhook_attempts_in_flight %llu\n"
              "# HELP subreg_webhook_latency_seconds Time from sending an attempt to its answer.\n"
              "# TYPE subreg_webhook_latency_seconds histogram\n",
              LOAD(m_queued), LOAD(m_pending), LOAD(m_attempts), LOAD(m_delivered), LOAD(m_failed_attempts), LOAD(m_retried),
              LOAD(m_exhausted), LOAD(m_deferred), (unsigned long long)__atomic_load_n(&inflight, __ATOMIC_RELAXED));
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

void job_init(job *j, const cJSON *due, const cJSON *hook, const char *body, int attempt)
{
    *j = (job){.id = xstrdup(json_get_str(due, "id")),
               .event_id = xstrdup(json_get_str(due, "event_id")),
               .hook_id = xstrdup(json_get_str(due, "webhook_id")),
               .url = xstrdup(json_get_str(hook, "url")),
               .secrets = cJSON_Duplicate(json_get(hook, "_secrets"), 1),
               .body = body,
               .attempt = attempt,
               .due = due};
}

void job_clear(job *j)
{
    free(j->id);
    free(j->event_id);
    free(j->hook_id);
    free(j->url);
    cJSON_Delete(j->secrets);
    cJSON_Delete(j->prior);
    if (j->easy) {
        curl_slist_free_all(j->headers);
        curl_easy_cleanup(j->easy);
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

void send_now(job *j)
{
    job_prepare(j);
    job_finish(j, curl_easy_perform(j->easy));
}

/* ---- the sender: one multi handle, a lane per subscription ------------------
 * A subscription that hangs or answers slowly fills its own lane (at most
 * endpoint_concurrency attempts in flight); its further first attempts are
 * deferred to due entries and its due entries are not read while the lane is
 * full, so it holds up no other subscription. The thread never waits for an
 * attempt: sender_pump moves every transfer on and reports those that end. */

typedef struct lane {
    char *hook_id;
    int inflight;
    int64_t backlog_until; /* mono ms: first attempts deferred, maybe still due */
    int unwritten;         /* deferred first attempts not written as due entries yet */
    struct lane *next;
} lane;

#define LANE_BUCKETS 1024
static lane *lanes[LANE_BUCKETS];
static CURLM *multi;
static int waiting;
static job *wait_head, *wait_tail;

static lane **lane_slot(const char *hook_id)
{
    lane **l = &lanes[(uint32_t)shard_of(hook_id) * 2654435761u % LANE_BUCKETS];
    while (*l && strcmp((*l)->hook_id, hook_id)) l = &(*l)->next;
    return l;
}

static lane *lane_get(const char *hook_id)
{
    lane **slot = lane_slot(hook_id);
    if (!*slot) {
        *slot = xcalloc(1, sizeof **slot);
        (*slot)->hook_id = xstrdup(hook_id);
    }
    return *slot;
}

/* Frees a lane with nothing in flight and no recent backlog. */
static void lane_tidy(const char *hook_id)
{
    lane **slot = lane_slot(hook_id), *l = *slot;
    if (!l || l->inflight > 0 || l->unwritten > 0 || l->backlog_until > mono_ms()) return;
    *slot = l->next;
    free(l->hook_id);
    free(l);
}

int lane_room(const char *hook_id)
{
    lane *l = *lane_slot(hook_id);
    return notify_cfg.endpoint_concurrency - (l ? l->inflight : 0);
}

bool lane_backlog(const char *hook_id)
{
    lane *l = *lane_slot(hook_id);
    return l && l->backlog_until > mono_ms();
}

void lane_defer(const char *hook_id)
{
    lane *l = lane_get(hook_id);
    l->backlog_until = mono_ms() + notify_cfg.lease_ms;
    l->unwritten++;
}

void lane_written(const char *hook_id)
{
    lane *l = *lane_slot(hook_id);
    if (!l) return;
    l->unwritten--;
    lane_tidy(hook_id);
}

void lane_clear_backlog(const char *hook_id)
{
    lane *l = *lane_slot(hook_id);
    if (!l || l->unwritten > 0) return;
    l->backlog_until = 0;
    lane_tidy(hook_id);
}

/* The subscription ids of the lanes pred accepts. */
static cJSON *lanes_where(bool (*pred)(const lane *l))
{
    cJSON *out = cJSON_CreateArray();
    for (int b = 0; b < LANE_BUCKETS; b++)
        for (lane *l = lanes[b]; l; l = l->next)
            if (pred(l)) cJSON_AddItemToArray(out, cJSON_CreateString(l->hook_id));
    return out;
}

static bool is_full(const lane *l)
{
    return l->inflight >= notify_cfg.endpoint_concurrency;
}

/* A backlog that may be over: deferred attempts all written, room in the lane
 * (a full lane's due entries are not read, so their absence proves nothing). */
static bool is_backlog(const lane *l)
{
    return l->backlog_until > mono_ms() && l->unwritten == 0 && !is_full(l);
}

cJSON *full_lanes(void)
{
    return lanes_where(is_full);
}

cJSON *backlog_lanes(void)
{
    return lanes_where(is_backlog);
}

int sender_room(void)
{
    return notify_cfg.concurrency - inflight - waiting;
}

int sender_waiting(void)
{
    return waiting;
}

static void start(job *j)
{
    if (!multi) multi = curl_multi_init();
    lane_get(j->hook_id)->inflight++;
    __atomic_add_fetch(&inflight, 1, __ATOMIC_RELAXED);
    job_prepare(j);
    curl_multi_add_handle(multi, j->easy);
}

/* Starts waiting jobs while there is room, in order. */
static void start_waiting(void)
{
    while (wait_head && inflight < notify_cfg.concurrency) {
        job *j = wait_head;
        wait_head = j->next_waiting;
        if (!wait_head) wait_tail = NULL;
        waiting--;
        if (j->group->lost || mono_ms() >= j->group->start_until) {
            j->unsent = true;
            job_done(j);
        } else if (lane_room(j->hook_id) <= 0) {
            j->deferred = true;
            lane_defer(j->hook_id);
            job_done(j);
        } else {
            start(j);
        }
    }
}

void sender_queue(job *j)
{
    j->next_waiting = NULL;
    if (wait_tail) wait_tail->next_waiting = j;
    else wait_head = j;
    wait_tail = j;
    waiting++;
    start_waiting();
}

void sender_drop_waiting(group *g)
{
    wait_tail = NULL;
    for (job **p = &wait_head; *p;) {
        job *j = *p;
        if (g && j->group != g) {
            wait_tail = j;
            p = &j->next_waiting;
            continue;
        }
        *p = j->next_waiting;
        waiting--;
        j->unsent = true;
        job_done(j);
    }
}

/* Reports finished transfers; returns how many. */
static int collect(void)
{
    CURLMsg *msg;
    int left, n = 0;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        job *j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        CURLcode rc = msg->data.result;
        curl_multi_remove_handle(multi, msg->easy_handle);
        job_finish(j, rc);
        __atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
        lane_get(j->hook_id)->inflight--;
        lane_tidy(j->hook_id);
        job_done(j);
        n++;
    }
    return n;
}

/* Starts what may start and moves every transfer on (a new one sends its
 * request at once) until none finishes any more. */
static void step(void)
{
    int still = 0;
    do {
        start_waiting();
        curl_multi_perform(multi, &still);
    } while (collect() > 0);
}

int sender_pump(int wait_ms)
{
    start_waiting();
    if (inflight == 0) {
        /* Idle: the connections kept for reuse are closed, so receivers that
         * give each connection a thread of their own get them back. */
        if (multi) curl_multi_cleanup(multi);
        multi = NULL;
        return waiting;
    }
    step();
    if (inflight > 0 && wait_ms > 0) {
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
        step();
    }
    return inflight + waiting;
}

void sender_stop(int ms)
{
    int64_t until = mono_ms() + ms;
    sender_drop_waiting(NULL); /* start nothing more */
    while (sender_pump(50) > 0 && mono_ms() < until) {
    }
}

void sender_abandon(job *j)
{
    curl_multi_remove_handle(multi, j->easy);
    curl_slist_free_all(j->headers);
    curl_easy_cleanup(j->easy);
    j->headers = NULL;
    j->easy = NULL;
    __atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
    lane_get(j->hook_id)->inflight--;
    j->unsent = true;
    job_done(j);
}

void sender_cleanup(void)
{
    if (multi) curl_multi_cleanup(multi);
    multi = NULL;
    for (int b = 0; b < LANE_BUCKETS; b++)
        while (lanes[b]) {
            lane *l = lanes[b];
            lanes[b] = l->next;
            free(l->hook_id);
            free(l);
        }
}
