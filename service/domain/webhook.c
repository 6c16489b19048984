#define _GNU_SOURCE
#include "subreg/webhook.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/resource.h"
#include "subreg/util.h"

char *webhook_new_secret(void)
{
    unsigned char key[32];
    random_bytes(key, sizeof key);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, key, sizeof key);
    char *out = xmalloc(strlen(b64) + 7);
    sprintf(out, "whsec_%s", b64);
    return out;
}

/* HMAC-SHA256 (RFC 2104) over a then b, on a digest fetched once: OpenSSL 3's
 * EVP_MAC looks the algorithm up on every use, which cost a fan-out to 10,000
 * subscriptions a third of its sending time. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static bool hmac_sha256(const unsigned char *key, size_t klen, const void *a, size_t alen, const void *b, size_t blen,
                        unsigned char out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md) return false;
    unsigned char k[64] = {0}, pad[64], inner[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c != NULL;
    if (ok && klen > sizeof k) ok = EVP_Digest(key, klen, k, NULL, sha256_md, NULL) == 1;
    else if (ok) memcpy(k, key, klen);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(c, sha256_md, NULL) && EVP_DigestUpdate(c, pad, sizeof pad) &&
         EVP_DigestUpdate(c, a, alen) && EVP_DigestUpdate(c, b, blen) && EVP_DigestFinal_ex(c, inner, NULL);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(c, sha256_md, NULL) && EVP_DigestUpdate(c, pad, sizeof pad) &&
         EVP_DigestUpdate(c, inner, sizeof inner) && EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    return ok;
}

bool webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t len,
                  char *out, size_t outlen)
{
    if (strncmp(secret, "whsec_", 6) != 0) return false;
    const char *b64 = secret + 6;
    size_t blen = strlen(b64);
    if (blen == 0 || blen % 4 != 0 || blen > 200) return false;
    unsigned char key[160];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)blen);
    if (klen < 0) return false;
    /* EVP_DecodeBlock counts padding bytes as data: drop them. */
    if (blen >= 1 && b64[blen - 1] == '=') klen--;
    if (blen >= 2 && b64[blen - 2] == '=') klen--;
    char prefix[320];
    int plen = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id, (long long)timestamp);
    unsigned char mac[32];
    bool ok = plen > 0 && (size_t)plen < sizeof prefix &&
              hmac_sha256(key, (size_t)klen, prefix, (size_t)plen, body, len, mac);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok || outlen < 48) return false;
    char sig[64];
    EVP_EncodeBlock((unsigned char *)sig, mac, 32);
    snprintf(out, outlen, "v1,%s", sig);
    return true;
}

/* ---- network policy ------------------------------------------------------ */

static bool in_net(const unsigned char *addr, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(addr, net, (size_t)full) != 0) return false;
    if (!rest) return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (addr[full] & mask) == (net[full] & mask);
}

bool netpolicy_parse(netpolicy *p, const char *cidrs, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!cidrs || !*cidrs) return true;
    char *copy = xstrdup(cidrs);
    bool ok = true;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        char *slash = strchr(t, '/');
        if (slash) *slash = '\0';
        if (p->n == NETPOLICY_MAX) {
            ok = false;
            break;
        }
        cidr *n = &p->nets[p->n];
        int max;
        if (inet_pton(AF_INET, t, n->addr) == 1) {
            n->family = AF_INET;
            max = 32;
        } else if (inet_pton(AF_INET6, t, n->addr) == 1) {
            n->family = AF_INET6;
            max = 128;
        } else {
            ok = false;
            break;
        }
        n->bits = max;
        if (slash) {
            char *end;
            long bits = strtol(slash + 1, &end, 10);
            if (!slash[1] || *end || bits < 0 || bits > max) ok = false;
            n->bits = (int)bits;
        }
        if (!ok) break;
        p->n++;
    }
    if (!ok) snprintf(err, errlen, "not a comma list of CIDRs (at most %d): %.60s", NETPOLICY_MAX, cidrs);
    free(copy);
    return ok;
}

typedef struct {
    const char *cidr;
    const char *why;
} blocked;

/* The IANA special-purpose address registries (IPv4: RFC 6890 and its updates;
 * IPv6 likewise, as of 2026), every entry, plus multicast and what the issue
 * tracker found: a webhook target is none of them unless the allow-list opens
 * it. tests/unit/test_netpolicy.c walks both tables' first and last addresses. */
static const blocked V4[] = {
    {"0.0.0.0/8", "unspecified"},   {"10.0.0.0/8", "private"},        {"100.64.0.0/10", "shared (CGNAT)"},
    {"127.0.0.0/8", "loopback"},    {"169.254.0.0/16", "link-local (metadata)"},
    {"172.16.0.0/12", "private"},   {"192.0.0.0/24", "IETF protocol assignments"},
    {"192.0.2.0/24", "documentation"}, {"192.31.196.0/24", "AS112"}, {"192.52.193.0/24", "AMT"},
    {"192.88.99.0/24", "6to4 relay anycast"}, {"192.168.0.0/16", "private"},
    {"192.175.48.0/24", "AS112 direct delegation"}, {"198.18.0.0/15", "benchmarking"},
    {"198.51.100.0/24", "documentation"}, {"203.0.113.0/24", "documentation"}, {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"},    {NULL, NULL},
};

static const blocked V6[] = {
    {"::/128", "unspecified"},      {"::1/128", "loopback"},            {"::ffff:0:0/96", "IPv4-mapped"},
    {"::ffff:0:0:0/96", "IPv4-translated"}, {"64:ff9b:1::/48", "local-use NAT64"},
    {"100::/64", "discard"},        {"100:0:0:1::/64", "dummy prefix"}, {"2001::/23", "IETF protocol assignments"},
    {"2001:db8::/32", "documentation"}, {"2620:4f:8000::/48", "AS112 direct delegation"},
    {"3fff::/20", "documentation"}, {"5f00::/16", "segment routing"}, {"fc00::/7", "unique local"},
    {"fe80::/10", "link-local"},    {"fec0::/10", "site-local"},        {"ff00::/8", "multicast"},
    {"::/96", "IPv4-compatible"},   {NULL, NULL},
};

/* IPv6 ranges that carry an IPv4 address: judged by that address. */
static const struct {
    const char *cidr;
    int offset; /* of the IPv4 address in the IPv6 one */
    const char *why;
} EMBEDDING[] = {
    {"64:ff9b::/96", 12, "NAT64 of a refused IPv4 address"},
    {"2002::/16", 2, "6to4 of a refused IPv4 address"},
    {NULL, 0, NULL},
};

/* Whether addr (of family) lies in range ("10.0.0.0/8", "2002::/16"). */
static bool in_cidr(const unsigned char *addr, int family, const char *range)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", range);
    char *slash = strchr(buf, '/');
    *slash = '\0';
    unsigned char net[16];
    inet_pton(family, buf, net);
    return in_net(addr, net, atoi(slash + 1));
}

static const char *classify(const blocked *list, int family, const unsigned char *addr)
{
    for (const blocked *b = list; b->cidr; b++)
        if (in_cidr(addr, family, b->cidr)) return b->why;
    return NULL;
}

static bool listed(const netpolicy *p, int family, const unsigned char *addr)
{
    for (int i = 0; i < p->n; i++)
        if (p->nets[i].family == family && in_net(addr, p->nets[i].addr, p->nets[i].bits)) return true;
    return false;
}

const char *netpolicy_refuse(const netpolicy *p, const struct sockaddr *sa)
{
    const unsigned char *addr;
    int family = sa->sa_family;
    if (family == AF_INET) addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (family == AF_INET6) addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    else return "not an IP address";
    if (listed(p, family, addr)) return NULL;
    if (family == AF_INET6)
        for (int i = 0; EMBEDDING[i].cidr; i++) {
            if (!in_cidr(addr, AF_INET6, EMBEDDING[i].cidr)) continue;
            const unsigned char *v4 = addr + EMBEDDING[i].offset;
            return listed(p, AF_INET, v4) || !classify(V4, AF_INET, v4) ? NULL : EMBEDDING[i].why;
        }
    return classify(family == AF_INET ? V4 : V6, family, addr);
}

bool netpolicy_lists(const netpolicy *p, const char *ip)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, ip, addr) == 1) return listed(p, AF_INET, addr);
    if (inet_pton(AF_INET6, ip, addr) == 1) return listed(p, AF_INET6, addr);
    return false;
}

/* ---- retries ------------------------------------------------------------- */

int64_t retry_delay(const char *schedule, int attempt)
{
    const char *p = schedule;
    for (int k = 1; *p; k++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) return -1;
        if (k == attempt) return v;
        p = *end == ',' ? end + 1 : end;
        if (!*end) break;
    }
    return -1;
}

int64_t retry_wait_ms(int64_t schedule_s, int64_t retry_after_s, uint32_t rnd)
{
    if (schedule_s < 0) return -1;
    double spread = (double)(rnd % 2001) / 10000.0; /* 0 .. 0.2 */
    int64_t ms = schedule_s * 1000;
    ms += (int64_t)((double)ms * (spread - 0.1)); /* ±10 % spreads the retries of many deliveries */
    if (retry_after_s >= 0 && ms < retry_after_s * 1000)
        ms = retry_after_s * 1000 + (int64_t)((double)retry_after_s * 1000 * spread / 2); /* + 0 .. 10 % */
    return ms;
}

int64_t parse_retry_after(const char *v, int64_t now_s)
{
    if (!v) return -1;
    while (*v == ' ') v++;
    char *end;
    long long s = strtoll(v, &end, 10);
    if (end != v && (*end == '\0' || *end == ' ' || *end == '\r')) return s < 0 ? 0 : s;
    struct tm tm = {0};
    const char *r = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!r) return -1;
    int64_t t = (int64_t)timegm(&tm);
    return t > now_s ? t - now_s : 0;
}

/* ---- events ---------------------------------------------------------------- */

cJSON *webhook_event_from_audit(const cJSON *rec, const char *public_base)
{
    const char *etype = json_get_str(rec, "entity_type"), *action = json_get_str(rec, "action");
    const resource *res = etype ? resource_by_type(etype) : NULL;
    if (!res || !action || res->events == EVENTS_NONE) return NULL;
    if (res == &RES_WEBHOOK) {
        /* Subscriptions themselves emit one operational event: being disabled. */
        const cJSON *before = json_get(rec, "before"), *after = json_get(rec, "after");
        if (strcmp(action, "update") != 0 || !cJSON_IsTrue(json_get(before, "enabled")) ||
            !cJSON_IsFalse(json_get(after, "enabled")) || !json_get_str(after, "disabled_reason"))
            return NULL;
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "type", "webhook.disabled");
        cJSON_AddStringToObject(ev, "timestamp", json_get_str(rec, "at") ? json_get_str(rec, "at") : "");
        cJSON *data = cJSON_AddObjectToObject(ev, "data");
        cJSON_AddStringToObject(data, "webhook_id", json_get_str(rec, "entity_id"));
        cJSON_AddStringToObject(data, "url", json_get_str(after, "url") ? json_get_str(after, "url") : "");
        cJSON_AddStringToObject(data, "reason", json_get_str(after, "disabled_reason"));
        return ev;
    }
    char type[96];
    if (res == &RES_PUBLICATION) {
        snprintf(type, sizeof type, "publication.%s", strcmp(action, "effective") == 0 ? "effective" : "announced");
        if (strcmp(action, "create") != 0 && strcmp(action, "effective") != 0) return NULL;
    } else {
        const char *past = strcmp(action, "create") == 0   ? "created"
                           : strcmp(action, "update") == 0 ? "updated"
                           : strcmp(action, "delete") == 0 ? "deleted"
                                                           : NULL;
        if (!past) return NULL;
        snprintf(type, sizeof type, "%s.%s", etype, past);
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "timestamp", json_get_str(rec, "at") ? json_get_str(rec, "at") : "");
    cJSON *data = cJSON_AddObjectToObject(ev, "data");
    if (res == &RES_PUBLICATION) {
        const cJSON *after = json_get(rec, "after");
        cJSON_AddNumberToObject(data, "version", cJSON_GetNumberValue(json_get(after, "number")));
        /* the announcement it replaces, the version its changes are against, and a
         * shortened notice with its reason: what the public forms say too */
        static const char *const keep[] = {"published_at", "effective_at", "objection_deadline", "summary", "replaces",
                                           "override_notice", "override_reason", NULL};
        for (const char *const *k = keep; *k; k++)
            if (json_get(after, *k)) cJSON_AddItemToObject(data, *k, cJSON_Duplicate(json_get(after, *k), 1));
        if (json_get(after, "diff")) cJSON_AddItemToObject(data, "changes", cJSON_Duplicate(json_get(after, "diff"), 1));
        if (json_get(after, "diff_against"))
            cJSON_AddItemToObject(data, "changes_against", cJSON_Duplicate(json_get(after, "diff_against"), 1));
        /* whom to tell: the services whose list changes and the customers who
         * buy them (an empty list: no customer needs to be told) */
        const cJSON *services = json_get(after, "services_affected"), *customers = json_get(after, "customers_affected");
        if (services) cJSON_AddItemToObject(data, "services_affected", cJSON_Duplicate(services, 1));
        if (customers) {
            cJSON_AddItemToObject(data, "customers_affected", cJSON_Duplicate(customers, 1));
            cJSON_AddNumberToObject(data, "customers_affected_count", cJSON_GetArraySize(customers));
        }
        const cJSON *withdrawn = json_get(after, "customers_withdrawn");
        if (withdrawn) cJSON_AddItemToObject(data, "customers_withdrawn", cJSON_Duplicate(withdrawn, 1));
        cJSON *links = cJSON_AddObjectToObject(data, "links");
        char buf[512];
        snprintf(buf, sizeof buf, "%s" PUBLIC_LIST_PATH, public_base);
        cJSON_AddStringToObject(links, "json", buf);
        snprintf(buf, sizeof buf, "%s" PUBLIC_CSV_PATH, public_base);
        cJSON_AddStringToObject(links, "csv", buf);
        snprintf(buf, sizeof buf, "%s/subprocessors", public_base);
        cJSON_AddStringToObject(links, "html", buf);
        snprintf(buf, sizeof buf, "%s" PUBLIC_VERSIONS_PATH "/%d", public_base,
                 (int)cJSON_GetNumberValue(json_get(after, "number")));
        cJSON_AddStringToObject(links, "version", buf);
    } else {
        cJSON_AddStringToObject(data, "entity_type", etype);
        cJSON_AddStringToObject(data, "id", json_get_str(rec, "entity_id"));
        cJSON_AddNumberToObject(data, "version", cJSON_GetNumberValue(json_get(rec, "entity_version")));
        cJSON_AddStringToObject(data, "actor", json_get_str(rec, "actor") ? json_get_str(rec, "actor") : "");
        const cJSON *state = strcmp(action, "delete") == 0 ? json_get(rec, "before") : json_get(rec, "after");
        if (cJSON_IsObject(state)) cJSON_AddItemToObject(data, "object", cJSON_Duplicate(state, 1));
    }
    return ev;
}

bool event_type_matches(const cJSON *subscribed, const char *type)
{
    for (const cJSON *c = subscribed ? subscribed->child : NULL; c; c = c->next) {
        if (!cJSON_IsString(c)) continue;
        const char *s = c->valuestring;
        if (strcmp(s, "*") == 0 || strcmp(s, type) == 0) return true;
        size_t n = strlen(s);
        /* "subprocessor.*" */
        if (n > 2 && s[n - 1] == '*' && s[n - 2] == '.' && strncmp(s, type, n - 1) == 0) return true;
    }
    return false;
}
