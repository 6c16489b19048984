/* config: every setting, read once from SUBREG_* environment variables and
 * validated at start; a bad value stops the process with a message naming it. */
#ifndef SUBREG_CONFIG_H
#define SUBREG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "subreg/webhook.h"

typedef struct {
    char *listen;          /* host:port */
    char *mongodb_uri;
    char *mongodb_db;
    int threads;
    long max_body_bytes;
    long max_document_bytes;
    int log_level;         /* LOG_DEBUG..LOG_ERROR */
    int keep_alive_ms;
    int recovery_interval_ms;
    int request_deadline_ms;
    int claim_lease_ms;
    int publish_poll_ms;
    char *public_base_url;
    int public_rate_per_min;
    char *rate_limit_exempt;
    netpolicy rate_limit_exempt_nets; /* parsed (and validated) from it */
    char *webhook_allow_http;
    char *webhook_allow_nets;
    netpolicy webhook_allow_nets_parsed;
    char *webhook_retry_schedule;
    int webhook_timeout_ms;
    int webhook_disable_after_s;
    int webhook_rotation_overlap_s;
    int webhook_poll_ms;
    int webhook_concurrency;
    int webhook_endpoint_concurrency;
    int webhook_lease_ms;
    char *cors_origin;     /* empty: no CORS headers */
    /* JWT */
    char *jwt_algorithms;  /* comma list, validated */
    char *jwt_hs256_secret;
    char *jwt_public_keys; /* comma list of [kid=]path */
    char *jwt_jwks;        /* JWKS file or URL */
    int jwt_jwks_refresh_s;
    char *jwt_issuer;
    char *jwt_audience;
    int jwt_leeway;
    char *jwt_roles_claim;
    char *jwt_role_map;
    char *time_zone;       /* IANA name; "today" and day bounds (util.h local_zone_set) */
    char *test_fault;      /* test hook, see docs/configuration.md */
} config;

/* Fills cfg from the environment. On error returns false and writes a message
 * naming the variable into err. */
bool config_load(config *cfg, char *err, size_t errlen);
void config_free(config *cfg);
/* Prints every setting with its default and meaning (for --help). */
void config_print_help(void);

#endif
