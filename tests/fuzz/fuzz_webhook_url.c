/* The webhook URL policy (the SSRF guard): the URL check of the schema
 * (is_http_url), its host and port (notify/webhooks.c url_host_port), the
 * network policy (domain/webhook.c netpolicy_parse/_lists/_refuse) and
 * url_refused for hosts that are IP literals (resolved without DNS), plus the
 * Retry-After and retry schedule parsers. The first byte: bit 0 allows http,
 * bits 1-2 pick the mode (0 a URL, 1 an allow-list, 2 a raw address, 3 retry
 * values); the rest is text, 0xFF, an allow-list (SUBREG_WEBHOOK_ALLOW_NETS).
 *
 * Properties: a URL the schema accepts has a host and a port of 1..65535; for an
 * IP-literal host url_refused decides as netpolicy_refuse does on the address
 * (what the delivery's socket callback checks), and plain http is refused unless
 * allowed; loopback, private, link-local (metadata), unspecified, multicast and
 * IPv4-mapped addresses are always refused unless the allow-list names them; every
 * net an accepted allow-list holds lists its own address and lets it through. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "notify/notify_internal.h"
#include "subreg/schema.h"
#include "subreg/util.h"
#include "subreg/webhook.h"

typedef struct {
    int family;
    const char *net;
    int bits;
} range;

/* Never to be reached without the operator's say-so (independent of webhook.c's table). */
static const range FORBIDDEN[] = {
    {AF_INET, "0.0.0.0", 8},   {AF_INET, "10.0.0.0", 8},     {AF_INET, "127.0.0.0", 8},  {AF_INET, "169.254.0.0", 16},
    {AF_INET, "172.16.0.0", 12}, {AF_INET, "192.168.0.0", 16}, {AF_INET, "100.64.0.0", 10}, {AF_INET, "224.0.0.0", 4},
    {AF_INET6, "::", 128},     {AF_INET6, "::1", 128},       {AF_INET6, "fe80::", 10},   {AF_INET6, "fc00::", 7},
    {AF_INET6, "::ffff:0:0", 96}, {AF_INET6, "ff00::", 8},     {0, NULL, 0},
};

static bool within(const unsigned char *a, const unsigned char *net, int bits)
{
    for (int i = 0; i < bits; i++) {
        int m = 0x80 >> (i % 8);
        if ((a[i / 8] & m) != (net[i / 8] & m)) return false;
    }
    return true;
}

static const char *forbidden(int family, const unsigned char *addr)
{
    for (const range *r = FORBIDDEN; r->net; r++) {
        unsigned char net[16];
        if (r->family != family) continue;
        CHECK(inet_pton(family, r->net, net) == 1, "table");
        if (within(addr, net, r->bits)) return r->net;
    }
    return NULL;
}

static void to_sockaddr(int family, const unsigned char *addr, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET) memcpy(&((struct sockaddr_in *)ss)->sin_addr, addr, 4);
    else memcpy(((struct sockaddr_in6 *)ss)->sin6_addr.s6_addr, addr, 16);
}

/* The policy's verdict on one address, checked against the forbidden ranges. */
static const char *verdict(const netpolicy *p, int family, const unsigned char *addr)
{
    struct sockaddr_storage ss;
    to_sockaddr(family, addr, &ss);
    const char *why = netpolicy_refuse(p, (const struct sockaddr *)&ss);
    char text[INET6_ADDRSTRLEN];
    CHECK(inet_ntop(family, addr, text, sizeof text), "inet_ntop");
    bool listed = netpolicy_lists(p, text);
    if (listed) CHECK(!why, "%s is allowed by the list but refused (%s)", text, why);
    const char *f = forbidden(family, addr);
    if (f && !listed) CHECK(why, "%s (in %s) is not refused", text, f);
    return why;
}

static bool numeric_host(const char *host, int *family, unsigned char addr[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    /* what getaddrinfo takes as an IPv4 literal without asking DNS: "127.1",
     * "0x7f.0.0.1", "2130706433" */
    if (strspn(host, "0123456789abcdefABCDEFxX.") == strlen(host) && inet_aton(host, &a4)) {
        *family = AF_INET;
        memcpy(addr, &a4, 4);
        return true;
    }
    return false;
}

static void url(const char *u, bool allow_http)
{
    notify_cfg.allow_http = allow_http;
    bool valid = is_http_url(u);
    char host[256] = "", port[8] = "";
    bool https = false;
    bool parsed = url_host_port(u, host, sizeof host, port, sizeof port, &https);
    if (!valid) return;
    CHECK(parsed && host[0], "a valid URL without a host: %s", u);
    char *end;
    long pn = strtol(port, &end, 10);
    CHECK(!*end && pn >= 1 && pn <= 65535, "port \"%s\" of %s", port, u);
    int family;
    unsigned char addr[16];
    if (!numeric_host(host, &family, addr)) return;
    char why[300] = "";
    const char *refused = url_refused(u, why, sizeof why);
    if (!https && !allow_http) {
        CHECK(refused, "plain http accepted: %s", u);
        return;
    }
    const char *want = verdict(&webhook_nets, family, addr);
    CHECK(!refused == !want, "url_refused says \"%s\", the policy \"%s\" for %s", refused ? refused : "ok",
          want ? want : "ok", u);
}

static void allow_list(const char *cidrs)
{
    netpolicy p;
    char err[200] = "";
    if (!netpolicy_parse(&p, cidrs, err, sizeof err)) {
        CHECK(err[0], "refused without a reason");
        return;
    }
    CHECK(p.n >= 0 && p.n <= NETPOLICY_MAX, "%d nets", p.n);
    for (int i = 0; i < p.n; i++) {
        const cidr *c = &p.nets[i];
        CHECK(c->family == AF_INET || c->family == AF_INET6, "family %d", c->family);
        CHECK(c->bits >= 0 && c->bits <= (c->family == AF_INET ? 32 : 128), "/%d", c->bits);
        CHECK(!verdict(&p, c->family, c->addr), "net %d refuses its own address", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *p, *q;
    size_t n, m;
    fuzz_piece(data + 1, size - 1, 0xFF, 0, &p, &n);
    fuzz_piece(data + 1, size - 1, 0xFF, 1, &q, &m);
    char *text = fuzz_cstr(p, n), *nets = fuzz_cstr(q, m);
    char err[200];
    if (!netpolicy_parse(&webhook_nets, nets, err, sizeof err)) memset(&webhook_nets, 0, sizeof webhook_nets);
    switch ((data[0] >> 1) & 3) {
    case 0: url(text, data[0] & 1); break;
    case 1: allow_list(text); break;
    case 2: {
        unsigned char addr[16] = {0};
        int family = n >= 16 ? AF_INET6 : AF_INET;
        memcpy(addr, p, n >= 16 ? 16 : n < 4 ? n : 4);
        (void)verdict(&webhook_nets, family, addr);
        break;
    }
    default: {
        int64_t now = 1750000000;
        int64_t s = parse_retry_after(text, now);
        CHECK(s >= -1, "Retry-After %lld", (long long)s);
        for (int k = 1; k <= 4; k++) (void)retry_delay(text, k);
        break;
    }
    }
    free(text);
    free(nets);
    return 0;
}
