#include "subreg/config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/log.h"
#include "subreg/util.h"

typedef enum { C_STR, C_INT, C_LEVEL } ctype;

typedef struct {
    const char *name;
    ctype type;
    size_t offset;
    const char *def;
    long min, max; /* C_INT */
    const char *help;
} setting;

#define OFF(f) offsetof(config, f)

static const setting SETTINGS[] = {
    {"SUBREG_LISTEN", C_STR, OFF(listen), "127.0.0.1:8080", 0, 0, "address and port to listen on (host:port)"},
    {"SUBREG_MONGODB_URI", C_STR, OFF(mongodb_uri), "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000", 0, 0,
     "MongoDB connection string"},
    {"SUBREG_MONGODB_DB", C_STR, OFF(mongodb_db), "subreg", 0, 0, "database name"},
    {"SUBREG_THREADS", C_INT, OFF(threads), "64", 2, 4096,
     "HTTP worker threads: connections held at once, idle ones included (20-150 KB of RSS each)"},
    {"SUBREG_MAX_BODY_BYTES", C_INT, OFF(max_body_bytes), "1048576", 1024, 1073741824,
     "largest accepted request body (413 above)"},
    {"SUBREG_MAX_DOCUMENT_BYTES", C_INT, OFF(max_document_bytes), "26214400", 1024, 1073741824,
     "largest PDF accepted by POST /v1/documents (413 above)"},
    {"SUBREG_LOG_LEVEL", C_LEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"SUBREG_KEEP_ALIVE_MS", C_INT, OFF(keep_alive_ms), "5000", 0, 600000, "keep-alive idle timeout"},
    {"SUBREG_RELAY_INTERVAL_MS", C_INT, OFF(recovery_interval_ms), "2000", 50, 600000,
     "how often the recovery sweep looks for write claims a crash or outage left pending"},
    {"SUBREG_REQUEST_DEADLINE_MS", C_INT, OFF(request_deadline_ms), "3000", 100, 600000,
     "time one API request may spend on the database in all: none of its operations starts later, and none waits "
     "longer (socketTimeoutMS, unless the URI sets it); past it the answer is 503 with Retry-After"},
    {"SUBREG_CLAIM_LEASE_MS", C_INT, OFF(claim_lease_ms), "30000", 100, 3600000,
     "age after which a pending write claim is settled by the recovery sweep (keep it above the write timeouts)"},
    {"SUBREG_PUBLISH_POLL_MS", C_INT, OFF(publish_poll_ms), "1000", 50, 600000,
     "how often an instance checks for new publications and versions taking effect"},
    {"SUBREG_PUBLIC_BASE_URL", C_STR, OFF(public_base_url), "", 0, 0,
     "absolute URL of the public endpoints, for links in the Atom feed; empty: http://SUBREG_LISTEN"},
    {"SUBREG_PUBLIC_RATE_PER_MIN", C_INT, OFF(public_rate_per_min), "600", 0, 1000000,
     "requests per minute and client address on the public paths (429 above); 0: unlimited"},
    {"SUBREG_RATE_LIMIT_EXEMPT", C_STR, OFF(rate_limit_exempt), "", 0, 0,
     "comma list of IPv4 CIDRs the public rate limit does not apply to (e.g. 127.0.0.0/8)"},
    {"SUBREG_WEBHOOK_ALLOW_HTTP", C_STR, OFF(webhook_allow_http), "false", 0, 0,
     "true: webhook URLs may use http (tests, internal receivers); otherwise https only"},
    {"SUBREG_WEBHOOK_ALLOW_NETS", C_STR, OFF(webhook_allow_nets), "", 0, 0,
     "comma list of CIDRs webhooks may reach although private/loopback/link-local (e.g. 127.0.0.0/8)"},
    {"SUBREG_WEBHOOK_RETRY_SCHEDULE", C_STR, OFF(webhook_retry_schedule), "0,5,300,1800,7200,18000,36000,36000", 0, 0,
     "seconds before each attempt (first, then retries), with +-10% jitter"},
    {"SUBREG_WEBHOOK_TIMEOUT_MS", C_INT, OFF(webhook_timeout_ms), "15000", 100, 120000,
     "an attempt that has not answered by then failed"},
    {"SUBREG_WEBHOOK_DISABLE_AFTER_S", C_INT, OFF(webhook_disable_after_s), "432000", 1, 31536000,
     "a subscription failing for this long is disabled (default 5 days)"},
    {"SUBREG_WEBHOOK_ROTATION_OVERLAP_S", C_INT, OFF(webhook_rotation_overlap_s), "86400", 0, 2592000,
     "after rotate-secret the previous secret keeps signing for this long"},
    {"SUBREG_WEBHOOK_POLL_MS", C_INT, OFF(webhook_poll_ms), "500", 10, 600000,
     "how often the delivery thread looks for queued events and due deliveries"},
    {"SUBREG_WEBHOOK_CONCURRENCY", C_INT, OFF(webhook_concurrency), "64", 1, 4096,
     "deliveries in flight at once per instance"},
    {"SUBREG_WEBHOOK_ENDPOINT_CONCURRENCY", C_INT, OFF(webhook_endpoint_concurrency), "4", 1, 64,
     "attempts in flight at once per subscription and instance; more wait in the subscription's own queue"},
    {"SUBREG_WEBHOOK_LEASE_MS", C_INT, OFF(webhook_lease_ms), "60000", 1000, 3600000,
     "delivery lease (an event's fan-out, a retry shard's period): one instance sends each attempt per lease"},
    {"SUBREG_CORS_ORIGIN", C_STR, OFF(cors_origin), "", 0, 0, "Access-Control-Allow-Origin value; empty: no CORS"},
    {"SUBREG_JWT_ALGORITHMS", C_STR, OFF(jwt_algorithms), "HS256", 0, 0,
     "accepted JWT algorithms: comma list of HS256, RS256, ES256"},
    {"SUBREG_JWT_HS256_SECRET", C_STR, OFF(jwt_hs256_secret), "", 0, 0, "HS256 secret (at least 32 bytes)"},
    {"SUBREG_JWT_PUBLIC_KEYS", C_STR, OFF(jwt_public_keys), "", 0, 0,
     "RS256/ES256 public keys: comma list of [kid=]/path/key.pem"},
    {"SUBREG_JWT_JWKS", C_STR, OFF(jwt_jwks), "", 0, 0,
     "RS256/ES256 keys as a JSON Web Key Set: a file path or an https URL (http only to loopback)"},
    {"SUBREG_JWT_JWKS_REFRESH_SECONDS", C_INT, OFF(jwt_jwks_refresh_s), "300", 1, 86400,
     "re-read the JWKS this often; a token with an unknown kid makes it re-read at most every min(this, 30) s"},
    {"SUBREG_JWT_ISSUER", C_STR, OFF(jwt_issuer), "", 0, 0, "required iss claim (unchecked when empty)"},
    {"SUBREG_JWT_AUDIENCE", C_STR, OFF(jwt_audience), "", 0, 0, "required aud claim value (unchecked when empty)"},
    {"SUBREG_JWT_LEEWAY_SECONDS", C_INT, OFF(jwt_leeway), "60", 0, 600, "clock leeway for exp, nbf and iat"},
    {"SUBREG_JWT_ROLES_CLAIM", C_STR, OFF(jwt_roles_claim), "roles", 0, 0,
     "dotted path of the roles claim, e.g. realm_access.roles or scope"},
    {"SUBREG_JWT_ROLE_MAP", C_STR, OFF(jwt_role_map), "", 0, 0,
     "map external role names: ext=reader|editor|admin,...; empty: reader/editor/admin literally"},
    {"SUBREG_TIMEZONE", C_STR, OFF(time_zone), "Europe/Berlin", 0, 0,
     "IANA time zone of the legal team's calendar: what \"today\" is for compliance findings and reports, and "
     "where a day of as_of begins and ends"},
    {"SUBREG_TEST_FAULT", C_STR, OFF(test_fault), "", 0, 0,
     "test only: exit_after_commit exits the process after a write is applied, before its audit record is committed; "
     "exit_after_fanout_record exits it once a fan-out's first results are recorded, before the fan-out is finished"},
};

#define NSETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

/* http(s)://host[:port], with a path when path is true; no spaces or control
 * characters (the value goes into headers and links). */
static bool is_origin_or_url(const char *v, bool path)
{
    const char *host = str_istarts(v, "https://") ? v + 8 : str_istarts(v, "http://") ? v + 7 : NULL;
    if (!host || !*host || *host == '/') return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return false;
    return path || !strpbrk(host, "/?#@"); /* an origin is scheme://host[:port], nothing else */
}

bool config_load(config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &SETTINGS[i];
        const char *v = getenv(s->name);
        if (!v) v = s->def;
        void *dst = (char *)cfg + s->offset;
        if (s->type == C_STR) {
            *(char **)dst = xstrdup(v);
        } else if (s->type == C_INT) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < s->min || n > s->max) {
                snprintf(err, errlen, "%s: must be an integer from %ld to %ld, got \"%.40s\"", s->name, s->min, s->max,
                         v);
                return false;
            }
            if (s->offset == OFF(max_body_bytes) || s->offset == OFF(max_document_bytes)) *(long *)dst = n;
            else *(int *)dst = (int)n;
        } else {
            int lv = log_level_parse(v);
            if (lv < 0) {
                snprintf(err, errlen, "%s: must be debug, info, warn or error, got \"%.40s\"", s->name, v);
                return false;
            }
            *(int *)dst = lv;
        }
    }
    const char *colon = strrchr(cfg->listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == cfg->listen || !colon[1] || *end || port < 1 || port > 65535) {
        snprintf(err, errlen, "SUBREG_LISTEN: must be host:port with a port from 1 to 65535, got \"%.60s\"",
                 cfg->listen);
        return false;
    }
    char why[160];
    if (!netpolicy_parse(&cfg->rate_limit_exempt_nets, cfg->rate_limit_exempt, why, sizeof why)) {
        snprintf(err, errlen, "SUBREG_RATE_LIMIT_EXEMPT: %s", why);
        return false;
    }
    if (!netpolicy_parse(&cfg->webhook_allow_nets_parsed, cfg->webhook_allow_nets, why, sizeof why)) {
        snprintf(err, errlen, "SUBREG_WEBHOOK_ALLOW_NETS: %s", why);
        return false;
    }
    size_t blen = strlen(cfg->public_base_url);
    while (blen > 0 && cfg->public_base_url[blen - 1] == '/') cfg->public_base_url[--blen] = '\0';
    if (*cfg->public_base_url && !is_origin_or_url(cfg->public_base_url, true)) {
        snprintf(err, errlen, "SUBREG_PUBLIC_BASE_URL: must be an absolute http(s) URL, got \"%.60s\"",
                 cfg->public_base_url);
        return false;
    }
    if (*cfg->cors_origin && strcmp(cfg->cors_origin, "*") != 0 && !is_origin_or_url(cfg->cors_origin, false)) {
        snprintf(err, errlen, "SUBREG_CORS_ORIGIN: must be * or an origin like https://legal.example.com, got \"%.60s\"",
                 cfg->cors_origin);
        return false;
    }
    if (strcmp(cfg->webhook_allow_http, "true") != 0 && strcmp(cfg->webhook_allow_http, "false") != 0) {
        snprintf(err, errlen, "SUBREG_WEBHOOK_ALLOW_HTTP: must be true or false");
        return false;
    }
    if (cfg->webhook_lease_ms < cfg->webhook_timeout_ms + 5000) {
        snprintf(err, errlen, "SUBREG_WEBHOOK_LEASE_MS: must exceed SUBREG_WEBHOOK_TIMEOUT_MS by at least 5000");
        return false;
    }
    if (!local_zone_set(cfg->time_zone, why, sizeof why)) {
        snprintf(err, errlen, "SUBREG_TIMEZONE: %s", why);
        return false;
    }
    if (*cfg->test_fault && strcmp(cfg->test_fault, "exit_after_commit") != 0 &&
        strcmp(cfg->test_fault, "exit_after_fanout_record") != 0) {
        snprintf(err, errlen, "SUBREG_TEST_FAULT: unknown fault \"%.40s\"", cfg->test_fault);
        return false;
    }
    return true;
}

void config_free(config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].type == C_STR) free(*(char **)((char *)cfg + SETTINGS[i].offset));
    memset(cfg, 0, sizeof *cfg);
}

void config_print_help(void)
{
    printf("Settings (environment variables):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *s = &SETTINGS[i];
        printf("  %-26s %s\n  %-26s default: %s\n", s->name, s->help, "", *s->def ? s->def : "(empty)");
    }
}
