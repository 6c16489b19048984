/* The delivery thread. Each round:
 *   1. fan-out: every queued event (event_queue, written with its change by
 *      store_write) whose audit record is committed is claimed (its event
 *      document, a unique insert) and its first attempts go out at once, one per
 *      matching enabled subscription, straight from memory; their results are
 *      written in bulk after each slice of sending. The claim is a lease,
 *      renewed while sending; if it lapses (crash, database away) one instance
 *      takes over and sends what was not recorded. Then the entry leaves the queue;
 *   2. retries: a failed first attempt leaves a due entry. Due entries are split
 *      into shards; an instance claims a shard for the current period by
 *      inserting {shard, period} (a unique _id), so exactly one instance sends a
 *      shard's attempts within a lease;
 *   3. sending: attempts go out through libcurl multi, signed, with the address
 *      actually connected to checked against the network policy, none started
 *      that could outlive the lease; results are written in bulk: the attempt
 *      log, the next attempt (retry schedule with jitter, Retry-After honoured),
 *      the subscription's health (410 or failing for too long disables it).
 * A crash between sending and recording means the attempt is sent again later:
 * at-least-once, with the same webhook-id. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "notify_internal.h"
#include "subreg/json.h"
#include "subreg/log.h"
#include "subreg/worker.h"

#define SHARDS 16
#define BATCH 5000
#define RECORD_BATCH 5000    /* fan-out: results written per bulk insert, at most */
#define RECORD_DELAY_MS 1000 /* fan-out: attempts started between two writes of results */
#define LEASE_MARGIN_MS 1000
#define EXCERPT 256
#define QUEUE "event_queue"
#define DUE "delivery_due"
#define LEASES "delivery_leases"
#define STAMPS "stamps"
#define ACTOR "subreg-delivery"

static char instance_id[40];

/* ---- metrics --------------------------------------------------------------- */

static uint64_t m_attempts, m_delivered, m_failed_attempts, m_exhausted, m_retried, m_pending, m_queued, m_lat_us;
static const double LAT_BUCKETS[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 15};
static uint64_t m_lat_hist[8];

static void count_latency(double ms)
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

static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    job *j = clientp;
    const char *why = netpolicy_refuse(&NETS, &a->addr);
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
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)NS.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(NS.timeout_ms < 5000 ? NS.timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, NS.allow_http ? "http,https" : "https");
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

/* Sends jobs in order, at most NS.concurrency at once, and returns how many it
 * sent (all of them answered or timed out). No job is started at or after
 * start_until (monotonic ms; 0: no limit): a caller holding a lease passes its
 * end less the timeout, so every attempt it sends ends within the lease. */
static int send_all(job *jobs, int n, int64_t start_until)
{
    CURLM *m = curl_multi_init();
    int next = 0, running = 0;
    while (next < n || running > 0) {
        while (next < n && running < NS.concurrency && (!start_until || mono_ms() < start_until)) {
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

/* ---- recording results ------------------------------------------------------ */

static void excerpt_string(const job *j, char *out, size_t outlen)
{
    /* The first bytes of the answer, as valid UTF-8 text. */
    size_t k = 0;
    for (size_t i = 0; i < j->excerpt_len && k + 1 < outlen; i++) {
        unsigned char c = (unsigned char)j->excerpt[i];
        out[k++] = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? (char)c : '?';
    }
    out[k] = '\0';
}

static cJSON *attempt_entry(const job *j, const char *at)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "n", j->attempt);
    cJSON_AddStringToObject(a, "at", at);
    if (j->status) cJSON_AddNumberToObject(a, "status_code", (double)j->status);
    cJSON_AddNumberToObject(a, "latency_ms", j->latency_ms);
    if (j->error[0]) cJSON_AddStringToObject(a, "error", j->error);
    char ex[EXCERPT + 1];
    excerpt_string(j, ex, sizeof ex);
    if (*ex) cJSON_AddStringToObject(a, "response_excerpt", ex);
    cJSON_AddStringToObject(a, "instance", instance_id);
    return a;
}

typedef struct {
    const char *id;
    bool ok, gone;
} hook_health;

/* Applies what a round learned about a subscription: recovered, failing, or to
 * be disabled (410, or failing longer than allowed). An audited update. */
static void update_health(const cJSON *hook, const hook_health *h, int64_t now)
{
    const char *failing = json_get_str(hook, "failing_since");
    int64_t since = 0;
    if (failing) parse_rfc3339(failing, &since);
    char at[32], reason[256] = "";
    format_rfc3339(now, at);
    bool disable = false;
    if (h->gone) {
        disable = true;
        snprintf(reason, sizeof reason, "the receiver answered 410 Gone");
    } else if (!h->ok && failing && now - since > (int64_t)NS.disable_after_s * 1000) {
        disable = true;
        snprintf(reason, sizeof reason, "failing since %s (longer than %d s)", failing, NS.disable_after_s);
    }
    if (h->ok && !failing) return;
    if (!h->ok && failing && !disable) return;
    cJSON *doc = cJSON_Duplicate(hook, 1);
    cJSON_DeleteItemFromObject(doc, "failing_since");
    if (!h->ok) cJSON_AddStringToObject(doc, "failing_since", failing ? failing : at);
    if (disable) {
        cJSON_ReplaceItemInObject(doc, "enabled", cJSON_CreateFalse());
        cJSON_DeleteItemFromObject(doc, "disabled_reason");
        cJSON_AddStringToObject(doc, "disabled_reason", reason);
        log_msgf(LOG_WARN, "webhook %s disabled: %s", h->id, reason);
    }
    char *rid = new_id("dlv_");
    /* ST_STALE: an admin changed the subscription meanwhile; the next round sees it. */
    doc_write(&RES_WEBHOOK, &(write_origin){ACTOR, rid, now}, NULL, h->id, hook, doc, NULL);
    free(rid);
    cJSON_Delete(doc);
}

/* Subscriptions by id: thousands of them are looked up per round. */
typedef struct {
    const cJSON **v;
    int n;
} hook_index;

static int cmp_hook(const void *a, const void *b)
{
    return strcmp(json_get_str(*(const cJSON *const *)a, "id"), json_get_str(*(const cJSON *const *)b, "id"));
}

static hook_index index_hooks(const cJSON *hooks)
{
    hook_index ix = {.v = xcalloc((size_t)cJSON_GetArraySize(hooks) + 1, sizeof *ix.v)};
    for (const cJSON *h = hooks ? hooks->child : NULL; h; h = h->next)
        if (json_get_str(h, "id")) ix.v[ix.n++] = h;
    qsort(ix.v, (size_t)ix.n, sizeof *ix.v, cmp_hook);
    return ix;
}

/* The position of subscription id in the index, or -1. */
static int hook_pos(const hook_index *ix, const char *id)
{
    int lo = 0, hi = ix->n - 1;
    while (lo <= hi && id) {
        int mid = (lo + hi) / 2, c = strcmp(json_get_str(ix->v[mid], "id"), id);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static const cJSON *find_hook(const hook_index *ix, const char *id)
{
    int pos = hook_pos(ix, id);
    return pos < 0 ? NULL : ix->v[pos];
}

/* A delivery document as its first attempt (or cancellation) creates it. */
static cJSON *delivery_doc(const cJSON *due, const char *at)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", json_get_str(due, "id"));
    cJSON_AddNumberToObject(d, "version", 1);
    cJSON_AddStringToObject(d, "created_at", json_get_str(due, "created_at") ? json_get_str(due, "created_at") : at);
    cJSON_AddStringToObject(d, "updated_at", at);
    cJSON_AddStringToObject(d, "webhook_id", json_get_str(due, "webhook_id"));
    cJSON_AddStringToObject(d, "event_id", json_get_str(due, "event_id"));
    cJSON_AddStringToObject(d, "event_type", json_get_str(due, "event_type"));
    return d;
}

/* Records the outcome of each job. dues[i] is jobs[i]'s due entry, prior[i] its
 * delivery document when an earlier attempt created one (else NULL). First
 * attempts become inserts in one round trip; only retries update documents.
 * direct: the due entries exist only in memory (a fan-out's first attempts):
 * a retry's entry is inserted (before the documents, so that a crash in between
 * leaves an entry, never a pending document without one), none is deleted. */
static store_status record(job *jobs, cJSON **dues, cJSON **prior, int n, const hook_index *hooks, int64_t now,
                           bool direct)
{
    cJSON *inserts = cJSON_CreateArray(), *ids = cJSON_CreateArray(), *sets = cJSON_CreateArray();
    cJSON *due_ids = cJSON_CreateArray(), *due_sets = cJSON_CreateArray(), *done = cJSON_CreateArray();
    cJSON *due_new = cJSON_CreateArray();
    uint64_t n_delivered = 0, n_exhausted = 0; /* counted once written */
    /* One health entry per subscription in this batch; slot[pos] - 1 is the
     * entry of the subscription at index position pos. */
    hook_health *hs = xcalloc((size_t)n + 1, sizeof *hs);
    int *slot = xcalloc((size_t)hooks->n + 1, sizeof *slot), nh = 0;
    char at[32];
    format_rfc3339(now, at);
    for (int i = 0; i < n; i++) {
        job *j = &jobs[i];
        int pos = hook_pos(hooks, json_get_str(dues[i], "webhook_id"));
        const cJSON *hook = pos < 0 ? NULL : hooks->v[pos];
        cJSON *log = prior[i] ? cJSON_Duplicate(json_get(prior[i], "attempt_log"), 1) : NULL;
        if (!log) log = cJSON_CreateArray();
        cJSON_AddItemToArray(log, attempt_entry(j, at));
        cJSON *set = cJSON_CreateObject();
        cJSON_AddItemToObject(set, "attempt_log", log);
        cJSON_AddNumberToObject(set, "attempts", j->attempt);
        cJSON_AddStringToObject(set, "last_attempt_at", at);
        cJSON_AddStringToObject(set, "updated_at", at);
        if (j->status) cJSON_AddNumberToObject(set, "last_status", (double)j->status);
        bool ok = j->status >= 200 && j->status < 300;
        bool gone = j->status == 410;
        hook_health *h = NULL;
        if (hook && !slot[pos]) {
            h = &hs[nh++];
            slot[pos] = nh;
            h->id = json_get_str(hook, "id");
        } else if (hook) {
            h = &hs[slot[pos] - 1];
        }
        if (h) {
            h->ok = h->ok || ok;
            h->gone = h->gone || gone;
        }
        if (ok) {
            cJSON_AddStringToObject(set, "state", "delivered");
            cJSON_AddStringToObject(set, "delivered_at", at);
            cJSON_AddNullToObject(set, "next_attempt_at");
            cJSON_AddItemToArray(done, cJSON_CreateString(j->id));
            n_delivered++;
        } else {
            __atomic_add_fetch(&m_failed_attempts, 1, __ATOMIC_RELAXED);
            int64_t delay = gone ? -1 : retry_delay(NS.retry_schedule, j->attempt + 1);
            int64_t ra = parse_retry_after(j->retry_after[0] ? j->retry_after : NULL, now / 1000);
            if (delay >= 0 && ra > delay) delay = ra;
            if (delay < 0) {
                cJSON_AddStringToObject(set, "state", "failed");
                cJSON_AddNullToObject(set, "next_attempt_at");
                cJSON_AddItemToArray(done, cJSON_CreateString(j->id));
                n_exhausted++;
            } else {
                /* ±10 % jitter spreads retries of many deliveries. */
                uint32_t rnd;
                random_bytes(&rnd, sizeof rnd);
                int64_t ms = delay * 1000;
                ms += (int64_t)((double)ms * ((double)(rnd % 2001) / 10000.0 - 0.1));
                char next[32];
                format_rfc3339(now + ms, next);
                cJSON_AddStringToObject(set, "state", "pending");
                cJSON_AddStringToObject(set, "next_attempt_at", next);
                cJSON *ds = direct ? cJSON_Duplicate(dues[i], 1) : cJSON_CreateObject();
                cJSON_DeleteItemFromObjectCaseSensitive(ds, "due_ms");
                cJSON_DeleteItemFromObjectCaseSensitive(ds, "attempts");
                cJSON_AddNumberToObject(ds, "due_ms", (double)(now + ms));
                cJSON_AddNumberToObject(ds, "attempts", j->attempt);
                if (direct) {
                    cJSON_AddItemToArray(due_new, ds);
                } else {
                    cJSON_AddItemToArray(due_ids, cJSON_CreateString(j->id));
                    cJSON_AddItemToArray(due_sets, ds);
                }
            }
        }
        if (prior[i]) {
            cJSON_AddItemToArray(ids, cJSON_CreateString(j->id));
            cJSON_AddItemToArray(sets, set);
        } else {
            cJSON *d = delivery_doc(dues[i], at);
            while (set->child) {
                cJSON *m = set->child;
                char *name = xstrdup(m->string);
                cJSON_DeleteItemFromObjectCaseSensitive(d, name);
                cJSON_AddItemToObject(d, name, cJSON_DetachItemViaPointer(set, m));
                free(name);
            }
            cJSON_Delete(set);
            cJSON_AddItemToArray(inserts, d);
        }
    }
    store_status st = store_insert_many(DUE, due_new);
    if (st == ST_OK) st = store_insert_many(RES_DELIVERY.collection, inserts);
    if (st == ST_OK) st = store_update_many(RES_DELIVERY.collection, ids, sets);
    if (st == ST_OK) st = store_update_many(DUE, due_ids, due_sets);
    if (st == ST_OK && !direct) st = store_delete_ids(DUE, done);
    if (st == ST_OK) {
        __atomic_add_fetch(&m_delivered, n_delivered, __ATOMIC_RELAXED);
        __atomic_add_fetch(&m_exhausted, n_exhausted, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < nh; i++) update_health(find_hook(hooks, hs[i].id), &hs[i], now);
    free(hs);
    free(slot);
    cJSON_Delete(due_new);
    cJSON_Delete(inserts);
    cJSON_Delete(ids);
    cJSON_Delete(sets);
    cJSON_Delete(due_ids);
    cJSON_Delete(due_sets);
    cJSON_Delete(done);
    return st;
}

/* ---- the subscriptions, cached ------------------------------------------------
 * Thousands of subscriptions are read every round; the thread keeps a copy and
 * reloads it when this instance changed one (notify_webhooks_changed) or after
 * a few seconds (another instance may have). */

static cJSON *hook_cache;
static hook_index hook_ix;
static char hook_cache_token[40];

/* Every change to a subscription, on any instance, writes a new token into one
 * small document; a round reloads its copy when the token moved. The token is
 * written before the change is answered, so an event created after a
 * subscription's 201 always finds it. */
void notify_webhooks_changed(void)
{
    char *token = new_id("");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "token", token);
    if (store_update_raw(STAMPS, "webhooks", doc) == ST_OK) {
        cJSON *probe = NULL;
        if (store_get_raw(STAMPS, "webhooks", &probe) == ST_NOT_FOUND) {
            cJSON_AddStringToObject(doc, "id", "webhooks");
            store_put_raw(STAMPS, doc);
        }
        cJSON_Delete(probe);
    }
    cJSON_Delete(doc);
    free(token);
}

/* The subscriptions, indexed by id; NULL when none could be loaded yet. The
 * index is rebuilt only when the copy is reloaded. */
static const hook_index *cached_hooks(void)
{
    cJSON *stamp = NULL;
    store_status sst = store_get_raw(STAMPS, "webhooks", &stamp);
    const char *token = sst == ST_OK ? json_get_str(stamp, "token") : "";
    bool fresh_enough = hook_cache && sst != ST_UNAVAILABLE && sst != ST_ERROR && token &&
                        strcmp(token, hook_cache_token) == 0;
    if (fresh_enough) {
        cJSON_Delete(stamp);
        return &hook_ix;
    }
    snprintf(hook_cache_token, sizeof hook_cache_token, "%s", token ? token : "");
    cJSON_Delete(stamp);
    bson_t all = BSON_INITIALIZER;
    cJSON *fresh = NULL;
    store_status st = store_find(RES_WEBHOOK.collection, &all, NULL, 1000000, &fresh);
    bson_destroy(&all);
    if (st != ST_OK) return hook_cache ? &hook_ix : NULL;
    cJSON_Delete(hook_cache);
    free(hook_ix.v);
    hook_cache = fresh;
    hook_ix = index_hooks(hook_cache);
    return &hook_ix;
}

/* ---- fan-out ------------------------------------------------------------- */

static int shard_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return (int)(h % SHARDS);
}

/* The due entry of a new delivery: all a first attempt needs besides the event. */
static cJSON *due_entry(const char *event_id, const char *type, const char *hook_id, const char *at, int64_t now,
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
static store_status put_event(const char *event_id, const char *type, const char *body, const char *at,
                              int64_t now, bool fanned_out)
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
    store_status st = store_put_raw(RES_EVENT.collection, ev);
    cJSON_Delete(ev);
    return st;
}

/* Inserts a lease: a unique id, so exactly one instance gets ST_OK. period lets
 * housekeeping remove it once it is history. */
static store_status put_lease(const char *id, int64_t period, const char *at)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "id", id);
    cJSON_AddStringToObject(l, "owner", instance_id);
    cJSON_AddStringToObject(l, "at", at);
    cJSON_AddNumberToObject(l, "period", (double)period);
    store_status st = store_put_raw(LEASES, l);
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
    if (store_get_raw(RES_EVENT.collection, qid, &ev) != ST_OK) return FANOUT_ERROR;
    const char *state = json_get_str(ev, "_fanout");
    int64_t since = (int64_t)cJSON_GetNumberValue(json_get(ev, "_fanout_ms"));
    int64_t gen = (int64_t)cJSON_GetNumberValue(json_get(ev, "_fanout_gen"));
    bool done = state && !strcmp(state, "done"), live = since > now - NS.lease_ms;
    cJSON_Delete(ev);
    if (done) return FANOUT_DONE;
    if (live) return FANOUT_BUSY;
    char id[200];
    snprintf(id, sizeof id, "fanout-%s-%lld", qid, (long long)(gen + 1));
    st = put_lease(id, now / NS.lease_ms, at);
    if (st == ST_DUPLICATE) return FANOUT_BUSY;
    if (st != ST_OK) return FANOUT_ERROR;
    cJSON *set = cJSON_CreateObject();
    cJSON_AddNumberToObject(set, "_fanout_ms", (double)now);
    cJSON_AddNumberToObject(set, "_fanout_gen", (double)(gen + 1));
    st = store_update_raw(RES_EVENT.collection, qid, set);
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
    const char *colls[2] = {RES_DELIVERY.collection, DUE};
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
    store_status st = store_update_raw(RES_EVENT.collection, qid, set);
    cJSON_Delete(set);
    if (st != ST_OK) return false;
    *lease_end = mono + NS.lease_ms - LEASE_MARGIN_MS;
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
        if (sent < k && mono_ms() - renewed > NS.lease_ms / 4) {
            ok = renew_fanout(qid, &lease_end);
            renewed = mono_ms();
            if (!ok) break;
        }
        int64_t until = lease_end - NS.timeout_ms, slice = mono_ms() + RECORD_DELAY_MS;
        int64_t ts = mono_ms(), cs = thread_cpu_us();
        int n = sent < k ? send_all(jobs + sent, k - sent, until < slice ? until : slice) : 0;
        send_ms += mono_ms() - ts;
        send_cpu_us += thread_cpu_us() - cs;
        if (n == 0 && sent < k) renewed = 0; /* the lease is nearly up: renew before going on */
        sent += n;
        while (ok && recorded < sent) {
            int m = sent - recorded < RECORD_BATCH ? sent - recorded : RECORD_BATCH;
            ok = record(jobs + recorded, dues + recorded, prior + recorded, m, hooks, now_ms(), true) == ST_OK;
            if (ok && NS.exit_after_fanout_record) _exit(98);
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

static int fanout(int64_t now, const hook_index *hooks)
{
    bson_t filter = BSON_INITIALIZER;
    cJSON *queue = NULL;
    if (store_find(QUEUE, &filter, "queued_ms", 200, &queue) != ST_OK) {
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
        store_status st = store_get_raw("audit", qid, &rec);
        if (st == ST_NOT_FOUND) {
            /* The write was given up (its claim removed): nothing happened. */
            if ((int64_t)cJSON_GetNumberValue(json_get(q, "queued_ms")) < now - 600000) store_delete_raw(QUEUE, qid);
            continue;
        }
        if (st != ST_OK) break;
        const char *state = json_get_str(rec, "_state");
        cJSON *ev = state && !strcmp(state, "committed") ? webhook_event_from_audit(rec, NS.public_base_url) : NULL;
        if (!ev) {
            if (state && !strcmp(state, "committed")) store_delete_raw(QUEUE, qid); /* emits nothing */
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
                        send_fanout(qid, due, body, hooks, claimed + NS.lease_ms - LEASE_MARGIN_MS);
            if (sent) {
                cJSON *set = cJSON_CreateObject();
                cJSON_AddStringToObject(set, "_fanout", "done");
                finished = store_update_raw(RES_EVENT.collection, qid, set) == ST_OK;
                cJSON_Delete(set);
            }
            log_msgf(LOG_DEBUG, "fan-out of %s (queued %lld ms before): %d subscriptions, %d to send, %s in %lld ms",
                     qid, (long long)(now - (int64_t)cJSON_GetNumberValue(json_get(q, "queued_ms"))), nd,
                     cJSON_GetArraySize(due), finished ? "done" : "not finished", (long long)(mono_ms() - claimed));
            fanned += cJSON_GetArraySize(due);
        }
        /* Busy: another instance is on it. Not finished: the claim lapses and
         * this or another instance takes over. Either way the entry stays. */
        if (finished) store_delete_raw(QUEUE, qid);
        cJSON_Delete(due);
        free(body);
        cJSON_Delete(ev);
        cJSON_Delete(rec);
        if (fc == FANOUT_ERROR) break;
    }
    cJSON_Delete(queue);
    return fanned;
}

/* ---- one round ------------------------------------------------------------- */

/* Claims this period's lease of each shard it can; returns the owned ones. A
 * lease, once known, holds for its whole period: what this thread learned about
 * a period (mine, or another's) is kept, so a round asks the database only
 * about shards it has not seen in that period. */
typedef struct {
    int64_t period; /* the period + 1 (0: nothing known) */
    bool mine;
} shard_lease;
static shard_lease known[2][SHARDS];

static int claim_shards(int64_t period, int owned[SHARDS])
{
    int n = 0;
    char at[32];
    format_rfc3339(now_ms(), at);
    for (int s = 0; s < SHARDS; s++) {
        shard_lease *k = &known[period & 1][s];
        if (k->period == period + 1) {
            if (k->mine) owned[n++] = s;
            continue;
        }
        char id[64];
        snprintf(id, sizeof id, "%d-%lld", s, (long long)period);
        store_status st = put_lease(id, period, at);
        if (st != ST_OK && st != ST_DUPLICATE) break; /* unknown: ask again next round */
        k->period = period + 1;
        k->mine = st == ST_OK;
        if (k->mine) owned[n++] = s;
    }
    return n;
}

/* Documents of coll whose ids are the values of member in items, in one query. */
static store_status load_by_ids(const char *coll, const cJSON *items, const char *member, cJSON **out)
{
    bson_t in = BSON_INITIALIZER, doc, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&in, "_id", &doc);
    BSON_APPEND_ARRAY_BEGIN(&doc, "$in", &arr);
    int k = 0;
    for (const cJSON *e = items->child; e; e = e->next) {
        const char *v = json_get_str(e, member);
        if (!v) continue;
        char key[16];
        snprintf(key, sizeof key, "%d", k++);
        BSON_APPEND_UTF8(&arr, key, v);
    }
    bson_append_array_end(&doc, &arr);
    bson_append_document_end(&in, &doc);
    store_status st = k ? store_find(coll, &in, NULL, k, out) : ST_OK;
    if (!k) *out = cJSON_CreateArray();
    bson_destroy(&in);
    return st;
}

static cJSON *take_by_id(cJSON *arr, const char *id)
{
    for (cJSON *x = arr ? arr->child : NULL; x; x = x->next)
        if (!strcmp(json_get_str(x, "id"), id)) return cJSON_DetachItemViaPointer(arr, x);
    return NULL;
}

static const cJSON *by_id(const cJSON *arr, const char *id)
{
    for (const cJSON *x = arr ? arr->child : NULL; x; x = x->next)
        if (!strcmp(json_get_str(x, "id"), id)) return x;
    return NULL;
}

static int deliver_due(int64_t now, const hook_index *hooks)
{
    int64_t round_start = mono_ms();
    int64_t period = now / NS.lease_ms;
    int64_t period_end = (period + 1) * NS.lease_ms;
    int owned[SHARDS];
    int n = claim_shards(period, owned);
    /* An attempt started now may still run when the lease ends: near the end,
     * send only for shards whose next lease this instance holds as well. */
    bool near_end = now + NS.timeout_ms + 2000 > period_end;
    if (n > 0 && near_end) {
        int next[SHARDS], nn = claim_shards(period + 1, next), k = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nn; j++)
                if (owned[i] == next[j]) owned[k++] = owned[i];
        n = k;
    }
    if (n == 0) return 0;
    bson_t filter = BSON_INITIALIZER, sub, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "shard", &sub);
    BSON_APPEND_ARRAY_BEGIN(&sub, "$in", &arr);
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        BSON_APPEND_INT32(&arr, k, owned[i]);
    }
    bson_append_array_end(&sub, &arr);
    bson_append_document_end(&filter, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "due_ms", &sub);
    BSON_APPEND_DOUBLE(&sub, "$lte", (double)now);
    bson_append_document_end(&filter, &sub);
    cJSON *due = NULL;
    store_status st = store_find(DUE, &filter, "due_ms", BATCH, &due);
    bson_destroy(&filter);
    if (st != ST_OK || cJSON_GetArraySize(due) == 0) {
        cJSON_Delete(due);
        return 0;
    }
    cJSON *events = NULL, *retries = cJSON_CreateArray(), *priors = NULL;
    /* The distinct events of this batch, and the documents of retried deliveries. */
    cJSON *event_refs = cJSON_CreateArray();
    for (const cJSON *e = due->child; e; e = e->next) {
        const char *eid = json_get_str(e, "event_id");
        bool seen = false;
        for (const cJSON *x = event_refs->child; x && !seen; x = x->next) seen = !strcmp(json_get_str(x, "id"), eid);
        if (!seen) {
            cJSON *ref = cJSON_CreateObject();
            cJSON_AddStringToObject(ref, "id", eid);
            cJSON_AddItemToArray(event_refs, ref);
        }
        if (cJSON_GetNumberValue(json_get(e, "attempts")) > 0) cJSON_AddItemReferenceToArray(retries, (cJSON *)e);
    }
    st = load_by_ids(RES_EVENT.collection, event_refs, "id", &events);
    if (st == ST_OK) st = load_by_ids(RES_DELIVERY.collection, retries, "id", &priors);
    cJSON_Delete(event_refs);
    if (st != ST_OK) {
        cJSON_Delete(events);
        cJSON_Delete(priors);
        cJSON_Delete(retries);
        cJSON_Delete(due);
        return 0;
    }
    int total = cJSON_GetArraySize(due);
    job *jobs = xcalloc((size_t)total, sizeof *jobs);
    cJSON **dues = xcalloc((size_t)total, sizeof *dues), **prior = xcalloc((size_t)total, sizeof *prior);
    cJSON *cancelled = cJSON_CreateArray(), *drop = cJSON_CreateArray();
    char at[32];
    format_rfc3339(now, at);
    int k = 0;
    for (cJSON *e = due->child; e; e = e->next) {
        const char *id = json_get_str(e, "id");
        const cJSON *hook = find_hook(hooks, json_get_str(e, "webhook_id"));
        const cJSON *ev = by_id(events, json_get_str(e, "event_id"));
        cJSON *pd = cJSON_GetNumberValue(json_get(e, "attempts")) > 0 ? take_by_id(priors, id) : NULL;
        if (!hook || !cJSON_IsTrue(json_get(hook, "enabled")) || !ev) {
            /* Subscription deleted or disabled (or the event lost): not sent. */
            cJSON *d = pd ? pd : delivery_doc(e, at);
            cJSON_ReplaceItemInObject(d, "updated_at", cJSON_CreateString(at));
            cJSON_DeleteItemFromObject(d, "state");
            cJSON_AddStringToObject(d, "state", "cancelled");
            cJSON_DeleteItemFromObject(d, "next_attempt_at");
            cJSON_AddItemToArray(cancelled, d);
            cJSON_AddItemToArray(drop, cJSON_CreateString(id));
            __atomic_add_fetch(&m_exhausted, 1, __ATOMIC_RELAXED);
            continue;
        }
        dues[k] = e;
        prior[k] = pd;
        jobs[k] = (job){.id = id,
                        .event_id = json_get_str(e, "event_id"),
                        .url = json_get_str(hook, "url"),
                        .secrets = json_get(hook, "_secrets"),
                        .body = json_get_str(ev, "payload"),
                        .attempt = (int)cJSON_GetNumberValue(json_get(e, "attempts")) + 1};
        k++;
    }
    /* Cancelled ones: replace (or create) their documents, drop their entries. */
    for (cJSON *d = cancelled->child; d; d = d->next) store_delete_raw(RES_DELIVERY.collection, json_get_str(d, "id"));
    store_insert_many(RES_DELIVERY.collection, cancelled);
    store_delete_ids(DUE, drop);
    int sent = 0;
    if (k > 0) {
        int64_t t0 = mono_ms();
        /* Attempts end within the lease held: the rest stay due for the next round. */
        int64_t lease_end = period_end + (near_end ? NS.lease_ms : 0);
        sent = send_all(jobs, k, t0 + (lease_end - now_ms()) - LEASE_MARGIN_MS - NS.timeout_ms);
        int64_t t1 = mono_ms();
        record(jobs, dues, prior, sent, hooks, now_ms(), false);
        log_msgf(LOG_DEBUG, "delivery round: %d of %d attempts, prepare %lld ms, send %lld ms, record %lld ms", sent, k,
                 (long long)(t0 - round_start), (long long)(t1 - t0), (long long)(mono_ms() - t1));
    }
    for (int i = 0; i < k; i++) cJSON_Delete(prior[i]);
    free(prior);
    free(dues);
    free(jobs);
    cJSON_Delete(cancelled);
    cJSON_Delete(drop);
    cJSON_Delete(events);
    cJSON_Delete(priors);
    cJSON_Delete(retries);
    cJSON_Delete(due);
    return sent;
}

/* ---- ping and redelivery ------------------------------------------------------ */

store_status deliver_ping(const cJSON *hook, cJSON **result)
{
    char *event_id = new_id("ping_");
    int64_t now = now_ms();
    char at[32];
    format_rfc3339(now, at);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", "ping");
    cJSON_AddStringToObject(ev, "timestamp", at);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(ev, "data"), "webhook_id", json_get_str(hook, "id"));
    char *body = json_dump(ev);
    store_status st = put_event(event_id, "ping", body, at, now, true);
    cJSON *due = due_entry(event_id, "ping", json_get_str(hook, "id"), at, now, 0);
    if (st == ST_OK) {
        job j = {.id = json_get_str(due, "id"), .event_id = event_id, .url = json_get_str(hook, "url"),
                 .secrets = json_get(hook, "_secrets"), .body = body, .attempt = 1};
        send_all(&j, 1, 0);
        format_rfc3339(now_ms(), at);
        bool ok = j.status >= 200 && j.status < 300;
        cJSON *d = delivery_doc(due, at);
        cJSON *log = cJSON_AddArrayToObject(d, "attempt_log");
        cJSON_AddItemToArray(log, attempt_entry(&j, at));
        cJSON_AddNumberToObject(d, "attempts", 1);
        cJSON_AddStringToObject(d, "last_attempt_at", at);
        cJSON_AddStringToObject(d, "state", ok ? "delivered" : "failed");
        if (j.status) cJSON_AddNumberToObject(d, "last_status", (double)j.status);
        cJSON *one = cJSON_CreateArray();
        cJSON_AddItemToArray(one, d);
        st = store_insert_many(RES_DELIVERY.collection, one);
        cJSON_Delete(one);
        __atomic_add_fetch(ok ? &m_delivered : &m_failed_attempts, 1, __ATOMIC_RELAXED);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "delivery_id", j.id);
        cJSON_AddBoolToObject(r, "success", ok);
        if (j.status) cJSON_AddNumberToObject(r, "status_code", (double)j.status);
        cJSON_AddNumberToObject(r, "latency_ms", j.latency_ms);
        if (j.error[0]) cJSON_AddStringToObject(r, "error", j.error);
        *result = r;
    }
    cJSON_Delete(due);
    cJSON_Delete(ev);
    free(body);
    free(event_id);
    return st;
}

store_status schedule_redelivery(const cJSON *d)
{
    const char *id = json_get_str(d, "id");
    int64_t now = now_ms();
    char at[32];
    format_rfc3339(now, at);
    cJSON *set = cJSON_CreateObject();
    cJSON_AddStringToObject(set, "state", "pending");
    cJSON_AddStringToObject(set, "next_attempt_at", at);
    cJSON_AddStringToObject(set, "updated_at", at);
    store_status st = store_update_raw(RES_DELIVERY.collection, id, set);
    cJSON_Delete(set);
    if (st != ST_OK) return st;
    int attempts = (int)cJSON_GetNumberValue(json_get(d, "attempts"));
    cJSON *e = due_entry(json_get_str(d, "event_id"), json_get_str(d, "event_type"), json_get_str(d, "webhook_id"),
                         at, now, attempts < 1 ? 1 : attempts);
    cJSON *due = cJSON_CreateArray();
    cJSON_AddItemToArray(due, e);
    st = store_insert_many(DUE, due);
    if (st == ST_OK) {
        cJSON *s2 = cJSON_CreateObject();
        cJSON_AddNumberToObject(s2, "due_ms", (double)now);
        st = store_update_raw(DUE, id, s2);
        cJSON_Delete(s2);
    }
    cJSON_Delete(due);
    return st;
}

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
    if (store_find(LEASES, filter, NULL, 1000, &leases) != ST_OK) return;
    cJSON *ids = cJSON_CreateArray();
    for (cJSON *l = leases->child; l; l = l->next) cJSON_AddItemToArray(ids, cJSON_CreateString(json_get_str(l, "id")));
    store_delete_ids(LEASES, ids);
    cJSON_Delete(ids);
    cJSON_Delete(leases);
}

/* Every twentieth round: the backlog gauges, and old leases removed. */
static void housekeeping(int64_t now)
{
    bson_t all = BSON_INITIALIZER;
    int64_t pending = 0;
    if (store_count(DUE, &all, &pending) == ST_OK) __atomic_store_n(&m_pending, (uint64_t)pending, __ATOMIC_RELAXED);
    if (store_count(QUEUE, &all, &pending) == ST_OK) __atomic_store_n(&m_queued, (uint64_t)pending, __ATOMIC_RELAXED);
    bson_destroy(&all);
    bson_t old = BSON_INITIALIZER, sub;
    BSON_APPEND_DOCUMENT_BEGIN(&old, "period", &sub);
    BSON_APPEND_DOUBLE(&sub, "$lt", (double)(now / NS.lease_ms - 10));
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
    return fanout(now, hooks) + deliver_due(now_ms(), hooks);
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
    NS = *s;
    NETS = *s->allow_nets;
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
    w = (worker){.round = notify_round, .interval_ms = NS.poll_ms};
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
    cJSON_Delete(hook_cache);
    free(hook_ix.v);
    hook_ix = (hook_index){0};
    hook_cache = NULL;
    hook_cache_token[0] = '\0';
}
