/* Webhook subscriptions, their deliveries and the events sent as resources. The
 * URL policy (io_check) and the delivery thread are notify/; the signatures, the
 * network policy and the event payloads are domain/webhook.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/notify.h"
#include "subreg/resource.h"
#include "subreg/util.h"
#include "subreg/webhook.h"

/* ---- the subscription resource -------------------------------------------- */

/* "*", "ping", an event of a resource's own ("publication.announced"), or
 * "<type>.<created|updated|deleted|*>" of a resource that announces its changes. */
static bool is_event_pattern(const char *s)
{
    static const char *const own[] = {"*", "ping", "publication.announced", "publication.effective", "publication.*",
                                      "webhook.disabled", NULL};
    for (const char *const *o = own; *o; o++)
        if (strcmp(s, *o) == 0) return true;
    const char *dot = strrchr(s, '.');
    if (!dot) return false;
    static const char *const verbs[] = {"*", "created", "updated", "deleted", NULL};
    bool verb = false;
    for (const char *const *v = verbs; *v && !verb; v++) verb = strcmp(dot + 1, *v) == 0;
    char type[64];
    if (!verb || (size_t)(dot - s) >= sizeof type) return false;
    snprintf(type, sizeof type, "%.*s", (int)(dot - s), s);
    const resource *res = resource_by_type(type);
    return res && res->events == EVENTS_CHANGES;
}

static const field EVENT_TYPE = {.type = FT_STRING, .min = 1, .max = 64, .check = is_event_pattern,
                                 .check_msg = "must be an event type (e.g. publication.announced, subprocessor.*, *)"};

static const field WEBHOOK_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "url", .type = FT_URL, .flags = FF_REQUIRED},
    {.name = "event_types", .type = FT_ARRAY, .flags = FF_REQUIRED | FF_UNIQUE, .min = 1, .max = 50,
     .item = &EVENT_TYPE, .def = "[\"*\"]"},
    {.name = "description", .type = FT_STRING, .min = 0, .max = 500},
    {.name = "enabled", .type = FT_BOOL, .flags = FF_REQUIRED, .def = "true"},
    {.name = "disabled_reason", .type = FT_STRING, .flags = FF_READONLY},
    {.name = "failing_since", .type = FT_DATETIME, .flags = FF_READONLY},
    {.name = "secret_rotated_at", .type = FT_DATETIME, .flags = FF_READONLY},
    {0},
};

static const filter_def WEBHOOK_FILTERS[] = {{"enabled", "enabled", &FIELD_BOOL, NULL}, {0}};
static const char *const WEBHOOK_INTERNAL[] = {"_secrets", NULL};

static void webhook_on_create(cJSON *doc, cJSON *extra)
{
    char *secret = webhook_new_secret();
    char at[32];
    format_rfc3339(now_ms(), at);
    cJSON *secrets = cJSON_AddArrayToObject(doc, "_secrets");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "secret", secret);
    cJSON_AddStringToObject(s, "created_at", at);
    cJSON_AddItemToArray(secrets, s);
    cJSON_AddStringToObject(extra, "secret", secret);
    free(secret);
}

/* Enabling a subscription again clears why it was disabled. */
static void webhook_on_update(const cJSON *before, cJSON *doc)
{
    if (cJSON_IsTrue(json_get(doc, "enabled")) && !cJSON_IsTrue(json_get(before, "enabled"))) {
        cJSON_DeleteItemFromObject(doc, "disabled_reason");
        cJSON_DeleteItemFromObject(doc, "failing_since");
    }
}

const resource RES_WEBHOOK = {
    .type = "webhook",
    .collection = COLL_WEBHOOKS,
    .path = "/v1/webhooks",
    .item_path = "/v1/webhooks/{id}",
    .id_prefix = "wh_",
    .fields = WEBHOOK_FIELDS,
    .filters = WEBHOOK_FILTERS,
    .read_role = ROLE_ADMIN,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    .io_check = notify_check_url,
    .on_create = webhook_on_create,
    .on_update = webhook_on_update,
    .keep_internal = WEBHOOK_INTERNAL,
    .after_write = notify_webhooks_changed,
    .events = EVENTS_OWN, /* webhook.disabled */
};

/* ---- deliveries: read-only, written by the delivery thread ----------------- */

static const char *const DELIVERY_STATES[] = {"pending", "delivered", "failed", "cancelled", NULL};

static const field DELIVERY_FIELDS[] = {
    SERVER_FIELDS,
    /* The delivery log outlives its subscription. */
    {.name = "webhook_id", .type = FT_REF, .flags = FF_WEAK, .ref = COLL_WEBHOOKS},
    {.name = "event_id", .type = FT_STRING},
    {.name = "event_type", .type = FT_STRING},
    {.name = "state", .type = FT_ENUM, .enums = DELIVERY_STATES},
    {0},
};

static const filter_def DELIVERY_FILTERS[] = {
    {"status", "state", &(const field){.type = FT_ENUM, .enums = DELIVERY_STATES}, NULL},
    {"event_type", "event_type", &(const field){.type = FT_STRING, .min = 1, .max = 64}, NULL},
    {"since", "created_at", &(const field){.type = FT_DATETIME}, "$gte"},
    {"webhook_id", "webhook_id", &(const field){.type = FT_REF, .ref = COLL_WEBHOOKS}, NULL},
    {0},
};

const resource RES_DELIVERY = {
    .type = "delivery",
    .collection = COLL_DELIVERIES,
    .path = "/v1/deliveries",
    .item_path = "/v1/deliveries/{id}",
    .parent_path = "/v1/webhooks/{id}/deliveries",
    .parent_field = "webhook_id",
    .fields = DELIVERY_FIELDS,
    .filters = DELIVERY_FILTERS,
    .routes = R_LIST | R_GET,
    .events = EVENTS_NONE, /* written by the delivery thread, never announced */
    .read_role = ROLE_ADMIN,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
};

/* ---- events: what was (or will be) sent, stored once per event -------------- */

static const field EVENT_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "type", .type = FT_STRING},
    {.name = "payload", .type = FT_STRING},
    {0},
};

static const filter_def EVENT_FILTERS[] = {
    {"type", "type", &(const field){.type = FT_STRING, .min = 1, .max = 64}, NULL},
    {"since", "created_at", &(const field){.type = FT_DATETIME}, "$gte"},
    {0},
};

const resource RES_EVENT = {
    .type = "event",
    .collection = COLL_EVENTS,
    .path = "/v1/events",
    .item_path = "/v1/events/{id}",
    .fields = EVENT_FIELDS,
    .filters = EVENT_FILTERS,
    .routes = R_LIST | R_GET,
    .events = EVENTS_NONE, /* written by the delivery thread, never announced */
    .read_role = ROLE_ADMIN,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
};
