/* The graceful stop (SIGTERM): stop accepting, answer every connection already
 * accepted, then stop — so that a client never sees a reset.
 *
 * civetweb 1.15 closes its listening socket only in mg_stop, and closing a
 * listening socket resets every connection still in its accept queue (clients
 * that have sent their request get ECONNRESET); mg_stop also drops accepted
 * connections still waiting in civetweb's queue for a worker, and a socket
 * closed with unread bytes in it sends a reset that can destroy an answer the
 * client has not read yet. So http_drain:
 *  1. sets draining: from now on every answer says Connection: close, civetweb
 *     closes the connection after it, and begin_request reads what is left of
 *     the request body first (server.c);
 *  2. stops accepting (stop_accepting): the listening socket refuses new
 *     connections, after what the kernel already queued has been accepted;
 *  3. waits until every accepted connection is answered and closed, or only
 *     idle keep-alive connections are left (no request for IDLE_GRACE_MS, none
 *     waiting for a worker), or the timeout. http_stop's mg_stop then closes
 *     the idle ones, as a keep-alive timeout would.
 * civetweb has no API for its sockets: this process's descriptors are looked
 * at (/proc/self/fd), a socket of ours being a TCP socket bound to a port
 * civetweb listens on. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "subreg/log.h"
#include "subreg/util.h"

/* With no request for this long, the connections still open are idle
 * keep-alive connections: closed (a client about to reuse one has had its
 * chance). */
#define IDLE_GRACE_MS 250
/* A handshake under way when the listener stops taking new ones is given this
 * long to complete (one round trip) and be accepted. */
#define HANDSHAKE_GRACE_MS 100
#define MAX_PORTS 8

static int ports[MAX_PORTS], nports;
static int draining;
static int held; /* connections a worker has taken and not closed yet */

static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

void drain_init(struct mg_context *ctx)
{
    struct mg_server_port sp[MAX_PORTS];
    int n = mg_get_server_ports(ctx, MAX_PORTS, sp);
    for (nports = 0; nports < n; nports++) ports[nports] = sp[nports].port;
}

bool http_draining(void)
{
    return __atomic_load_n(&draining, __ATOMIC_ACQUIRE);
}

int drain_connection_opened(const struct mg_connection *conn, void **data)
{
    (void)conn;
    (void)data;
    __atomic_add_fetch(&held, 1, __ATOMIC_ACQ_REL);
    return 0;
}

void drain_connection_closed(const struct mg_connection *conn)
{
    (void)conn;
    __atomic_sub_fetch(&held, 1, __ATOMIC_ACQ_REL);
}

/* 1 when fd is one of civetweb's listening sockets, 0 a connection it
 * accepted (queued or with a worker), -1 anything else. */
static int our_socket(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return -1;
    int port = sa.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
               : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                          : -1;
    bool ours = false;
    for (int i = 0; i < nports; i++) ours = ours || ports[i] == port;
    int type = 0, listening = 0;
    socklen_t tl = sizeof type, ll = sizeof listening;
    if (!ours || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0)
        return -1;
    if (listening) return 1;
    len = sizeof sa;
    return getpeername(fd, (struct sockaddr *)&sa, &len) == 0 ? 0 : -1;
}

/* Our sockets of a kind (as our_socket), up to cap of them into fds; their
 * number, -1 when the descriptors cannot be listed. */
static int find_sockets(int kind, int *fds, int cap)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d) || our_socket(fd) != kind) continue;
        if (n < cap) fds[n] = fd;
        n++;
    }
    closedir(d);
    return n;
}

/* How many connections the kernel has completed for a listening socket and
 * civetweb has not accepted yet (TCP_INFO's tcpi_unacked on a listening
 * socket); 0 when it cannot tell. */
static unsigned accept_queue(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 ? ti.tcpi_unacked : 0;
}

/* The listening sockets stop accepting, without resetting what the kernel has
 * accepted for them (closing a listening socket resets its accept queue):
 *  1. a socket filter drops new SYNs, so nothing joins the queue any more
 *     (the client's kernel sends the SYN again a second later, and is refused);
 *  2. civetweb's master thread accepts what is queued (accept_queue);
 *  3. shutdown(SHUT_RD) takes the socket out of LISTEN: new connections are
 *     refused (RST: ECONNREFUSED, which a client or load balancer retries
 *     elsewhere) and the master thread's poll() wakes;
 *  4. an empty eventfd takes the descriptor's place (dup2): poll() on the shut
 *     socket would return POLLHUP at once and the master thread would spin
 *     until mg_stop, which closes the eventfd as its listener.
 * A TCP socket's filter sees each segment from its TCP header on. */
static void stop_accepting(int64_t until)
{
    static const struct sock_filter drop_syn[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),          /* the TCP header's flags */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),       /* SYN and ACK */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* a SYN alone: */
        BPF_STMT(BPF_RET | BPF_K, 0),                    /* dropped */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffff),           /* the rest kept */
    };
    const struct sock_fprog prog = {sizeof drop_syn / sizeof drop_syn[0], (struct sock_filter *)drop_syn};
    int fds[MAX_PORTS];
    int n = find_sockets(1, fds, MAX_PORTS);
    if (n <= 0) {
        log_msgf(LOG_WARN, "stopping: no listening socket found; it closes when the server stops");
        return;
    }
    if (n > MAX_PORTS) n = MAX_PORTS;
    for (int i = 0; i < n; i++)
        if (setsockopt(fds[i], SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
            log_msgf(LOG_WARN, "stopping: cannot hold new connections back (SO_ATTACH_FILTER failed)");
    pause_ms(HANDSHAKE_GRACE_MS);
    for (int i = 0; i < n; i++) {
        while (accept_queue(fds[i]) > 0 && mono_ms() < until) pause_ms(5);
        shutdown(fds[i], SHUT_RD);
        int park = eventfd(0, EFD_CLOEXEC);
        if (park >= 0) {
            dup2(park, fds[i]);
            close(park);
        }
    }
}

int http_drain(int timeout_ms)
{
    __atomic_store_n(&draining, 1, __ATOMIC_RELEASE);
    int64_t until = mono_ms() + timeout_ms;
    stop_accepting(until);
    unsigned long long seen = requests_started();
    int64_t quiet_since = mono_ms();
    while (mono_ms() < until) {
        int open = find_sockets(0, NULL, 0);
        if (open == 0) break; /* every connection answered and closed */
        unsigned long long started = requests_started();
        if (started != seen || in_flight() > 0) {
            seen = started;
            quiet_since = mono_ms();
        } else if (mono_ms() - quiet_since >= IDLE_GRACE_MS && open <= __atomic_load_n(&held, __ATOMIC_ACQUIRE)) {
            break; /* only idle keep-alive connections, none waiting for a worker */
        }
        pause_ms(20);
    }
    return (int)in_flight();
}
