/* The ceiling for bench/public-list: a civetweb server with subreg's settings
 * (tcp_nodelay, keep-alive, same thread count) answering a fixed JSON body from a
 * begin_request callback. Whatever subreg spends beyond this is its own cost.
 * Usage: bench_hello [host:port] [threads] [body-file]: the body defaults to a
 * hello-world JSON; a file gives a ceiling for a response of the same size. */
#include <civetweb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char HELLO[] = "{\"hello\":\"world\"}";
static char *response; /* status line, headers and body, built once */
static size_t response_len;
static volatile sig_atomic_t stop;
static uint64_t received, first_ns, last_ns; /* requests answered, wall clock of the first and the latest */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The fastest answer a civetweb handler can give: status line, headers and body
 * in one write (subreg writes its responses the same way). */
static int handler(struct mg_connection *conn)
{
    const char *uri = mg_get_request_info(conn)->local_uri;
    if (uri && (strcmp(uri, "/count") == 0 || strcmp(uri, "/reset") == 0)) {
        /* For the fan-out benchmark: how many arrived, when the first and the
         * latest did (wall clock, ns); /reset starts counting again. */
        if (uri[1] == 'r') {
            __atomic_store_n(&received, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&first_ns, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&last_ns, 0, __ATOMIC_RELAXED);
        }
        char body[96], out[224];
        int bn = snprintf(body, sizeof body, "%llu %llu %llu\n",
                          (unsigned long long)__atomic_load_n(&received, __ATOMIC_RELAXED),
                          (unsigned long long)__atomic_load_n(&first_ns, __ATOMIC_RELAXED),
                          (unsigned long long)__atomic_load_n(&last_ns, __ATOMIC_RELAXED));
        int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                         bn, body);
        mg_write(conn, out, (size_t)n);
        return 200;
    }
    /* Read a request body (the webhook sink), then answer. */
    char buf[8192];
    while (mg_read(conn, buf, sizeof buf) > 0) {
    }
    mg_write(conn, response, response_len);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    __atomic_add_fetch(&received, 1, __ATOMIC_RELAXED);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&first_ns, &zero, ns, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    uint64_t prev = __atomic_load_n(&last_ns, __ATOMIC_RELAXED);
    while (ns > prev && !__atomic_compare_exchange_n(&last_ns, &prev, ns, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return 200;
}

static void build_response(const char *body, size_t len)
{
    static const char fmt[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n";
    response = malloc(len + 256);
    int n = snprintf(response, 256, fmt, len);
    memcpy(response + n, body, len);
    response_len = (size_t)n + len;
}

int main(int argc, char **argv)
{
    const char *listen = argc > 1 ? argv[1] : "127.0.0.1:8099";
    const char *threads = argc > 2 ? argv[2] : "32";
    if (argc > 3) {
        FILE *f = fopen(argv[3], "rb");
        if (!f) return 2;
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        build_response(buf, n);
    } else {
        build_response(HELLO, sizeof HELLO - 1);
    }
    const char *options[] = {"listening_ports", listen, "num_threads", threads, "tcp_nodelay", "1",
                             "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000",
                             "access_control_allow_origin", "", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.begin_request = handler;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    mg_init_library(0);
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (!ctx) return 1;
    while (!stop) pause();
    mg_stop(ctx);
    mg_exit_library();
    free(response);
    return 0;
}
