/* subreg: the subprocessor and SCC registry service.
 * Subcommands: serve, migrate, token, healthcheck. Start modules in order, wait for a signal,
 * stop them in reverse. */
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subreg/api.h"
#include "subreg/auth.h"
#include "subreg/config.h"
#include "subreg/http.h"
#include "subreg/log.h"
#include "subreg/notify.h"
#include "subreg/resource.h"
#include "subreg/store.h"

#ifndef SUBREG_VERSION
#define SUBREG_VERSION "0.0.0-dev"
#endif

extern const char subreg_openapi_yaml[];
extern const unsigned long subreg_openapi_yaml_len;
extern const char subreg_seed_countries[], subreg_seed_adequacy[], subreg_seed_scc_sets[];

static volatile sig_atomic_t stop_requested;
/* SIGTERM/SIGINT: requests in flight get this long to finish (Kubernetes gives
 * 30 s before SIGKILL by default). */
#define DRAIN_TIMEOUT_MS 25000
#define MIGRATE_SOCKET_TIMEOUT_MS 10000

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "subreg %s — subprocessor and SCC registry\n\n"
                 "Usage:\n"
                 "  subreg serve                 run the HTTP service\n"
                 "  subreg migrate               create indexes, seed the reference law (idempotent)\n"
                 "  subreg restore FILE          load an export (GET /v1/export; - reads stdin) into an\n"
                 "                               empty database, before migrate (docs/operations.md)\n"
                 "  subreg token --sub NAME --roles ROLE[,ROLE] [--ttl SECONDS]\n"
                 "                               print an HS256 token (needs SUBREG_JWT_HS256_SECRET)\n"
                 "  subreg healthcheck [--ready]  GET /healthz (or /readyz) of the service at\n"
                 "                               SUBREG_LISTEN; exit 0 on 200 (the image's HEALTHCHECK)\n"
                 "  subreg --version | --help\n\n",
            SUBREG_VERSION);
}

static auth_ctx *make_auth(const config *c, char *err, size_t n)
{
    auth_settings s = {
        .algorithms = c->jwt_algorithms,
        .hs256_secret = c->jwt_hs256_secret,
        .public_keys = c->jwt_public_keys,
        .jwks = c->jwt_jwks,
        .jwks_refresh_s = c->jwt_jwks_refresh_s,
        .issuer = c->jwt_issuer,
        .audience = c->jwt_audience,
        .leeway = c->jwt_leeway,
        .roles_claim = c->jwt_roles_claim,
        .role_map = c->jwt_role_map,
    };
    return auth_new(&s, err, n);
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p, (void)u;
    return size * n;
}

/* The container's health check: the image has no shell and no curl. An unspecified
 * listen address (0.0.0.0) is probed on loopback. */
static int cmd_healthcheck(const config *c, int argc, char **argv)
{
    const char *path = "/healthz";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--ready") == 0) path = "/readyz";
        else {
            fprintf(stderr, "subreg healthcheck: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    const char *colon = strrchr(c->listen, ':'); /* validated by config_load */
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - c->listen), c->listen);
    if (!strcmp(host, "0.0.0.0") || !host[0]) snprintf(host, sizeof host, "127.0.0.1");
    char url[400];
    snprintf(url, sizeof url, "http://%s:%s%s", host, colon + 1, path);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        rc = curl_easy_perform(h);
        if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
    }
    curl_global_cleanup();
    if (rc != CURLE_OK) fprintf(stderr, "subreg healthcheck: %s: %s\n", url, curl_easy_strerror(rc));
    else if (status != 200) fprintf(stderr, "subreg healthcheck: %s: HTTP %ld\n", url, status);
    return rc == CURLE_OK && status == 200 ? 0 : 1;
}

static int cmd_token(const config *c, int argc, char **argv)
{
    const char *sub = NULL, *roles = NULL;
    int ttl = 3600;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--sub") == 0 && i + 1 < argc) sub = argv[++i];
        else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc) roles = argv[++i];
        else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) ttl = atoi(argv[++i]);
        else {
            fprintf(stderr, "subreg token: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!sub || !roles || ttl < 1) {
        fprintf(stderr, "subreg token: --sub and --roles are required, --ttl must be positive\n");
        return 2;
    }
    if (!*c->jwt_hs256_secret) {
        fprintf(stderr, "subreg token: SUBREG_JWT_HS256_SECRET is not set\n");
        return 2;
    }
    char *tok = auth_mint_hs256(c->jwt_hs256_secret, sub, roles, c->jwt_issuer, c->jwt_audience,
                                now_ms() / 1000, ttl);
    if (!tok) {
        fprintf(stderr, "subreg token: could not sign the token\n");
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

static int cmd_migrate(void)
{
    store_status st = store_migrate();
    if (st != ST_OK) {
        log_msgf(LOG_ERROR, "migrate failed: %s", store_status_name(st));
        return 1;
    }
    log_event(LOG_INFO, "migrate: indexes in place", NULL);
    const struct {
        const resource *res;
        const char *json;
    } seeds[] = {{&RES_COUNTRY, subreg_seed_countries},
                 {&RES_ADEQUACY, subreg_seed_adequacy},
                 {&RES_SCC_SET, subreg_seed_scc_sets}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        int inserted = 0, updated = 0;
        st = crud_seed(seeds[i].res, seeds[i].json, &inserted, &updated);
        if (st != ST_OK) {
            log_msgf(LOG_ERROR, "migrate: seeding %s failed: %s", seeds[i].res->collection, store_status_name(st));
            return 1;
        }
        log_msgf(LOG_INFO, "migrate: %s: %d inserted, %d updated from the seed", seeds[i].res->collection, inserted,
                 updated);
    }
    return 0;
}

static int cmd_serve(const config *c, const auth_ctx *auth)
{
    api_cfg.test_fault = *c->test_fault ? c->test_fault : NULL;
    api_cfg.openapi_yaml = subreg_openapi_yaml;
    api_cfg.openapi_len = subreg_openapi_yaml_len;
    api_cfg.max_document_bytes = c->max_document_bytes;
    char base[300];
    snprintf(base, sizeof base, "http://%s", c->listen);
    api_cfg.public_base_url = *c->public_base_url ? c->public_base_url : base;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    route routes[128];
    int n = api_routes(routes, 128);
    if (n < 0) return 1; /* a descriptor without roles: refused (logged) */
    http_settings hs = {
        .listen = c->listen,
        .threads = c->threads,
        .keep_alive_ms = c->keep_alive_ms,
        .request_deadline_ms = c->request_deadline_ms,
        .max_body = c->max_body_bytes,
        .cors_origin = c->cors_origin,
        .auth = auth,
        .public_rate_per_min = c->public_rate_per_min,
        .rate_limit_exempt = &c->rate_limit_exempt_nets,
        .thread_exit = publish_thread_exit,
    };
    store_set_claim_lease(c->claim_lease_ms);
    store_set_exit_after_apply(api_cfg.test_fault && !strcmp(api_cfg.test_fault, "exit_after_commit"));
    notify_settings ns = {
        .allow_http = strcmp(c->webhook_allow_http, "true") == 0,
        .allow_nets = &c->webhook_allow_nets_parsed,
        .retry_schedule = c->webhook_retry_schedule,
        .timeout_ms = c->webhook_timeout_ms,
        .disable_after_s = c->webhook_disable_after_s,
        .rotation_overlap_s = c->webhook_rotation_overlap_s,
        .poll_ms = c->webhook_poll_ms,
        .concurrency = c->webhook_concurrency,
        .endpoint_concurrency = c->webhook_endpoint_concurrency,
        .lease_ms = c->webhook_lease_ms,
        .public_base_url = api_cfg.public_base_url,
        .exit_after_fanout_record = api_cfg.test_fault && !strcmp(api_cfg.test_fault, "exit_after_fanout_record"),
    };
    char nerr[256];
    if (!notify_init(&ns, nerr, sizeof nerr)) {
        fprintf(stderr, "subreg: configuration error: %s\n", nerr);
        return 2;
    }
    if (c->claim_lease_ms <= store_socket_timeout_ms())
        log_msgf(LOG_WARN,
                 "SUBREG_CLAIM_LEASE_MS (%d) is not above the MongoDB socket timeout (%d ms): a write the database "
                 "runs late could be settled as not applied, leaving it unaudited; raise the lease (tests only)",
                 c->claim_lease_ms, store_socket_timeout_ms());
    readiness_start();
    recovery_start(c->recovery_interval_ms, c->claim_lease_ms);
    publish_start(c->publish_poll_ms);
    notify_start();
    char err[256];
    if (!http_start(&hs, routes, n, err, sizeof err)) {
        notify_stop();
        publish_stop();
        recovery_stop();
        readiness_stop();
        fprintf(stderr, "subreg: %s\n", err);
        return 1;
    }
    strbuf fields = {0};
    log_field(&fields, "listen", c->listen);
    log_field(&fields, "version", SUBREG_VERSION);
    log_field_int(&fields, "threads", c->threads);
    log_event(LOG_INFO, "serving", fields.data);
    sb_free(&fields);
    while (!stop_requested) pause();
    log_event(LOG_INFO, "stopping: finishing in-flight requests", NULL);
    int left = http_drain(DRAIN_TIMEOUT_MS);
    if (left) log_msgf(LOG_WARN, "stopping with %d request(s) still running after %d s", left, DRAIN_TIMEOUT_MS / 1000);
    http_stop();
    notify_stop();
    publish_stop();
    recovery_stop();
    readiness_stop();
    log_event(LOG_INFO, "stopped", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        config_print_help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("subreg %s\n", SUBREG_VERSION);
        return 0;
    }
    /* glibc's default of up to 8 malloc arenas per core keeps the peaks of large
     * requests (findings, publications of thousands of subprocessors) in many
     * arenas at once; one arena per core (at least 2) lets them reuse each
     * other's memory. MALLOC_ARENA_MAX overrides (docs/performance.md). */
    if (!getenv("MALLOC_ARENA_MAX")) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        mallopt(M_ARENA_MAX, cpus < 2 ? 2 : (int)cpus);
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 && strcmp(cmd, "token") != 0 &&
        strcmp(cmd, "healthcheck") != 0 && strcmp(cmd, "restore") != 0) {
        fprintf(stderr, "subreg: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }
    config c;
    char err[512];
    if (!config_load(&c, err, sizeof err)) {
        fprintf(stderr, "subreg: configuration error: %s\n", err);
        config_free(&c);
        return 2;
    }
    log_set_level(c.log_level);
    int rc;
    if (strcmp(cmd, "token") == 0 || strcmp(cmd, "healthcheck") == 0) {
        rc = strcmp(cmd, "token") == 0 ? cmd_token(&c, argc, argv) : cmd_healthcheck(&c, argc, argv);
        config_free(&c);
        return rc;
    }
    bool restore = strcmp(cmd, "restore") == 0;
    if (restore && argc != 3) {
        fprintf(stderr, "subreg restore takes one argument: the export file (or - for stdin)\n");
        config_free(&c);
        return 2;
    }
    if (strcmp(cmd, "serve") == 0 && argc > 2) {
        fprintf(stderr, "subreg serve takes no arguments; settings come from SUBREG_* variables (see --help)\n");
        config_free(&c);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before any thread (the JWKS reader's included) */
    auth_ctx *auth = NULL;
    if (strcmp(cmd, "serve") == 0 && !(auth = make_auth(&c, err, sizeof err))) {
        fprintf(stderr, "subreg: configuration error: %s\n", err);
        curl_global_cleanup();
        config_free(&c);
        return 2;
    }
    /* migrate may build an index on a large collection, restore write many
     * documents at once: they keep a longer socket timeout */
    int op_timeout_ms = strcmp(cmd, "migrate") == 0 || restore ? MIGRATE_SOCKET_TIMEOUT_MS : c.request_deadline_ms;
    if (!store_init(c.mongodb_uri, c.mongodb_db, c.threads + 4, op_timeout_ms, err, sizeof err)) {
        fprintf(stderr, "subreg: configuration error: %s\n", err);
        auth_free(auth);
        curl_global_cleanup();
        config_free(&c);
        return 2;
    }
    rc = restore ? export_restore(argv[2]) : strcmp(cmd, "migrate") == 0 ? cmd_migrate() : cmd_serve(&c, auth);
    auth_free(auth); /* joins the JWKS reader, which may be inside libcurl */
    curl_global_cleanup();
    store_cleanup();
    config_free(&c);
    return rc;
}
