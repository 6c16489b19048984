/* resource: the descriptors of the registry's resources. One generic CRUD path
 * (api/crud.c, store/store.c) serves every resource described here; a resource
 * adds only its field table, its list filters and its domain rules. */
#ifndef SUBREG_RESOURCE_H
#define SUBREG_RESOURCE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "subreg/auth.h"
#include "subreg/schema.h"

struct req;

/* A list filter: ?param=value becomes {path: value} (value validated by type). */
typedef struct {
    const char *param;
    const char *path;
    const field *type;
    const char *op; /* NULL: equality; "$gte" etc.: a range (timestamps are canonical strings) */
} filter_def;

/* Outcome of a domain rule check beyond the schema. */
typedef struct {
    int status;         /* 0 = fine, 400 = see errs, 422 = see detail */
    char detail[256];
} rule_result;

/* What a resource's committed changes announce to webhook subscribers. */
typedef enum {
    EVENTS_NONE = 0, /* nothing (deliveries, events) */
    EVENTS_CHANGES,  /* "<type>.created", ".updated", ".deleted" */
    EVENTS_OWN,      /* events of its own (webhook_event_from_audit): publication.announced and
                      * .effective, webhook.disabled */
} resource_events;

/* Which generic routes a resource gets (0: all of them). */
enum { R_LIST = 1, R_GET = 2, R_CREATE = 4, R_PATCH = 8, R_DELETE = 16 };

typedef struct resource {
    const char *type;       /* entity type in audit and events: "subprocessor" */
    const char *collection; /* MongoDB collection */
    const char *path;       /* collection URL: "/v1/subprocessors" */
    const char *item_path;  /* "/v1/subprocessors/{id}" */
    const char *id_prefix;  /* "sp_" */
    bool client_ids;        /* the create body carries the id (reference data) */
    /* Nested collection URL ("/v1/publications/{id}/objections"): list and create
     * there, with parent_field (an FT_REF) taken from the path. */
    const char *parent_path;
    const char *parent_field;
    const field *fields;
    const filter_def *filters; /* terminated by {0} */
    unsigned routes;           /* R_* bits; 0 = all */
    /* Roles: every descriptor declares all three (deny by default: routes are
     * not built for a descriptor that leaves one at ROLE_NONE). */
    role read_role;
    role write_role; /* create and update */
    role delete_role;
    /* The lifecycle of the "status" member, enforced by the CRUD path after
     * check: the changes allowed ({from, to}, terminated by {NULL}; NULL: any),
     * and the statuses a document may be created in (NULL-terminated; NULL: any). */
    const char *const (*transitions)[2];
    const char *const *initial_statuses;
    /* Domain rules over the whole new state (before is NULL on create). */
    void (*check)(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r);
    /* Checks that need I/O (e.g. resolving a webhook's host) of the new state
     * (before: NULL on create); answers the request itself and returns false
     * to refuse. */
    bool (*io_check)(struct req *r, const cJSON *before, const cJSON *doc);
    /* On create, after validation: may add internal members to doc and members
     * shown once in the 201 response (e.g. a secret). */
    void (*on_create)(cJSON *doc, cJSON *response_extra);
    /* On update: may adjust server-maintained members of the new state. */
    void (*on_update)(const cJSON *before, cJSON *doc);
    /* After a committed create, update or delete (e.g. to drop a cache). */
    void (*after_write)(void);
    /* Internal members ('_'-prefixed) an update carries over, NULL-terminated. */
    const char *const *keep_internal;
    resource_events events;
    /* The members the public list shows (publication.h's public_view),
     * NULL-terminated; NULL: the resource is never public. */
    const char *const *public_fields;
    /* Public members the audit trail leaves out of before/after (bulky frozen
     * copies, e.g. a publication's items), NULL-terminated. */
    const char *const *audit_omit;
} resource;

extern const resource RES_SUBPROCESSOR, RES_AGREEMENT, RES_TRANSFER, RES_TOM, RES_CUSTOMER, RES_SERVICE;
extern const resource RES_COUNTRY, RES_ADEQUACY, RES_SCC_SET, RES_DOCUMENT, RES_OBJECTION;

extern const resource RES_WEBHOOK, RES_DELIVERY, RES_EVENT, RES_PUBLICATION;

/* Every resource, NULL-terminated (routing, indexes, reference scans). */
extern const resource *const RESOURCES[];

/* The descriptor of an entity type ("subprocessor", "publication"), or NULL. */
const resource *resource_by_type(const char *type);

/* Whether the descriptor declares its read, write and delete roles. */
bool resource_roles_declared(const resource *res);

/* Every rule of a descriptor beyond the schema, as the write path applies them:
 * its check, then its lifecycle (transitions, initial statuses). before is NULL
 * for a create. r->status 0: fine; 400: see errs; 422: see r->detail. */
void resource_rules(const resource *res, const cJSON *before, const cJSON *after, verrors *errs, rule_result *r);

#endif
