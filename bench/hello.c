/* The ceiling for bench/public-list: a civetweb server with subreg's settings
 * (tcp_nodelay, keep-alive, same thread count) answering a fixed JSON body from a
 * begin_request callback. Whatever subreg spends beyond this is its own cost.
 * Usage: bench_hello [host:port] [threads] [body-file]: the body defaults to a
 * hello-world JSON; a file gives a ceiling for a response of the same size. */
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char HELLO[] = "{\"hello\":\"world\"}";
static char *response; /* status line, headers and body, built once */
static size_t response_len;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The fastest answer a civetweb handler can give: status line, headers and body
 * in one write (subreg writes its responses the same way). */
static int handler(struct mg_connection *conn)
{
    /* Read a request body (the webhook sink), then answer. */
    char buf[8192];
    while (mg_read(conn, buf, sizeof buf) > 0) {
    }
    mg_write(conn, response, response_len);
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
