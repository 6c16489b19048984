/* The ceiling for bench/webhook-fanout: n POSTs of a body to one URL through
 * libcurl multi with the same concurrency, headers and timeout as subreg's
 * delivery thread — and nothing else (no database, no signing, no bookkeeping).
 * Usage: curl_ceiling URL N CONCURRENCY BODY_BYTES; prints requests/s. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    (void)u;
    return s * n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) return 2;
    const char *url = argv[1];
    int n = atoi(argv[2]), conc = atoi(argv[3]);
    size_t blen = (size_t)atoi(argv[4]);
    char *body = malloc(blen + 1);
    memset(body, 'x', blen);
    body[blen] = '\0';
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "webhook-id: msg_0000000000000000000000000000");
    h = curl_slist_append(h, "webhook-timestamp: 1800000000");
    h = curl_slist_append(h, "webhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    h = curl_slist_append(h, "Expect:");
    CURLM *m = curl_multi_init();
    int started = 0, running = 0, ok = 0;
    double t0 = now_s();
    while (started < n || running > 0) {
        while (started < n && running < conc) {
            CURL *e = curl_easy_init();
            curl_easy_setopt(e, CURLOPT_URL, url);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)blen);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
            curl_multi_add_handle(m, e);
            started++;
            running++;
        }
        int still;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code / 100 == 2) ok++;
            curl_multi_remove_handle(m, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
            running--;
        }
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    double dt = now_s() - t0;
    printf("%d %.3f %.1f\n", ok, dt, ok / dt);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    curl_global_cleanup();
    free(body);
    return ok == n ? 0 : 1;
}
