/* Webhook subscriptions and deliveries as resources, the URL policy (SSRF
 * guard), secrets and their rotation, ping and redeliver. The delivery thread is
 * in delivery.c. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify_internal.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/log.h"

notify_settings notify_cfg;
netpolicy webhook_nets;

/* ---- the URL policy ---------------------------------------------------------
 * https only (http when allowed), no credentials in the URL, and every address
 * the host resolves to must be a public unicast address unless the operator's
 * allow-list opens it. The same check runs again at delivery time on the address
 * actually connected to (delivery.c), so DNS rebinding gains nothing. */

bool url_host_port(const char *url, char *host, size_t hostlen, char *port, size_t portlen, bool *https)
{
    const char *p;
    if (str_istarts(url, "https://")) {
        p = url + 8;
        *https = true;
    } else if (str_istarts(url, "http://")) {
        p = url + 7;
        *https = false;
    } else {
        return false;
    }
    size_t hl = strcspn(p, "/?#");
    const char *h = p, *end = p + hl;
    const char *colon = NULL;
    if (*h == '[') {
        const char *close = memchr(h, ']', hl);
        if (!close) return false;
        snprintf(host, hostlen, "%.*s", (int)(close - h - 1), h + 1);
        if (close + 1 < end && close[1] == ':') colon = close + 1;
    } else {
        colon = memchr(h, ':', hl);
        snprintf(host, hostlen, "%.*s", (int)((colon ? colon : end) - h), h);
    }
    if (colon) snprintf(port, portlen, "%.*s", (int)(end - colon - 1), colon + 1);
    else snprintf(port, portlen, "%s", *https ? "443" : "80");
    return *host != '\0';
}

/* NULL when the URL may be used; otherwise why not. Resolves the host. */
const char *url_refused(const char *url, char *why, size_t whylen)
{
    char host[256], port[8];
    bool https;
    if (!url_host_port(url, host, sizeof host, port, sizeof port, &https)) return "not an http(s) URL";
    if (!https && !notify_cfg.allow_http) return "must use https";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(why, whylen, "the host %s does not resolve", host);
        return why;
    }
    const char *refused = NULL;
    for (struct addrinfo *a = res; a && !refused; a = a->ai_next) {
        const char *r = netpolicy_refuse(&webhook_nets, a->ai_addr);
        if (r) {
            snprintf(why, whylen, "the host %s resolves to a forbidden address (%s)", host, r);
            refused = why;
        }
    }
    freeaddrinfo(res);
    return refused;
}

bool notify_check_url(req *r, const cJSON *before, const cJSON *doc)
{
    (void)before;
    const char *url = json_get_str(doc, "url");
    char why[300];
    const char *refused = url ? url_refused(url, why, sizeof why) : "missing";
    if (!refused) return true;
    verrors e;
    verrors_init(&e);
    verrors_add(&e, "/url", "%s", refused);
    respond_errors(r, 422, "unprocessable-entity", "the webhook URL is not allowed", &e);
    verrors_free(&e);
    return false;
}

/* ---- actions -------------------------------------------------------------- */


static void handle_rotate(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *cur = NULL;
    store_status st = store_get(RES_WEBHOOK.collection, r->param, &cur);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    int64_t now = now_ms();
    char at[32], until[32];
    format_rfc3339(now, at);
    format_rfc3339(now + (int64_t)notify_cfg.rotation_overlap_s * 1000, until);
    cJSON *doc = cJSON_Duplicate(cur, 1);
    cJSON_DeleteItemFromObject(doc, "secret_rotated_at");
    cJSON_AddStringToObject(doc, "secret_rotated_at", at);
    /* Keep the secrets still valid; the newest so far expires after the overlap. */
    cJSON *old = json_get(cur, "_secrets");
    cJSON *secrets = cJSON_CreateArray();
    for (const cJSON *s = old ? old->child : NULL; s; s = s->next) {
        const char *exp = json_get_str(s, "expires_at");
        if (exp && strcmp(exp, at) <= 0) continue;
        cJSON *c = cJSON_Duplicate(s, 1);
        if (!exp) cJSON_AddStringToObject(c, "expires_at", until);
        cJSON_AddItemToArray(secrets, c);
    }
    char *secret = webhook_new_secret();
    cJSON *fresh = cJSON_CreateObject();
    cJSON_AddStringToObject(fresh, "secret", secret);
    cJSON_AddStringToObject(fresh, "created_at", at);
    cJSON_AddItemToArray(secrets, fresh);
    cJSON_DeleteItemFromObject(doc, "_secrets");
    cJSON_AddItemToObject(doc, "_secrets", secrets);
    int64_t v = 0;
    st = doc_write(&RES_WEBHOOK, &(write_origin){r->who.sub, r->request_id, now}, NULL, r->param, cur, doc, &v);
    if (st != ST_OK) {
        respond_store_error(r, st);
    } else {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "secret", secret);
        cJSON_AddStringToObject(out, "previous_secrets_valid_until", until);
        req_add_etag(r, v);
        respond_json(r, 200, out);
        cJSON_Delete(out);
    }
    free(secret);
    cJSON_Delete(doc);
    cJSON_Delete(cur);
}

static void handle_ping(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *hook = NULL;
    store_status st = store_get(RES_WEBHOOK.collection, r->param, &hook);
    if (st != ST_OK) {
        respond_store_error(r, st);
        return;
    }
    cJSON *result = NULL;
    st = deliver_ping(hook, &result);
    if (st != ST_OK) respond_store_error(r, st);
    else respond_json(r, 200, result);
    cJSON_Delete(result);
    cJSON_Delete(hook);
}

static void handle_redeliver(req *r)
{
    if (!req_check_query(r, NULL)) return;
    cJSON *d = NULL, *now = NULL;
    store_status st = store_get(RES_DELIVERY.collection, r->param, &d);
    if (st == ST_OK) st = schedule_redelivery(d);
    /* Answer with the state it is in now: pending, due at once. */
    if (st == ST_OK) st = store_get(RES_DELIVERY.collection, r->param, &now);
    if (st != ST_OK) {
        respond_store_error(r, st);
    } else {
        doc_public(now);
        respond_json(r, 202, now);
    }
    cJSON_Delete(now);
    cJSON_Delete(d);
}

int notify_routes(route *out, int cap)
{
    const route rs[] = {
        {"POST", "/v1/webhooks/{id}/rotate-secret", handle_rotate, ROLE_ADMIN, NULL, 0},
        {"POST", "/v1/webhooks/{id}/ping", handle_ping, ROLE_ADMIN, NULL, 0},
        {"POST", "/v1/deliveries/{id}/redeliver", handle_redeliver, ROLE_ADMIN, NULL, 0},
    };
    return add_routes(out, cap, rs, sizeof rs / sizeof rs[0]);
}
