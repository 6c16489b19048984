/* resource: the descriptors of the registry's resources. One generic CRUD path
 * (api/crud.c, store/store.c) serves every resource described here; a resource
 * adds only its field table, its list filters and its domain rules. */
#ifndef SUBREG_RESOURCE_H
#define SUBREG_RESOURCE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "subreg/auth.h"
#include "subreg/schema.h"

/* A list filter: ?param=value becomes {path: value} (value validated by type). */
typedef struct {
    const char *param;
    const char *path;
    const field *type;
} filter_def;

/* Outcome of a domain rule check beyond the schema. */
typedef struct {
    int status;         /* 0 = fine, 400 = see errs, 422 = see detail */
    char detail[256];
} rule_result;

typedef struct resource {
    const char *type;       /* entity type in audit and events: "subprocessor" */
    const char *collection; /* MongoDB collection */
    const char *path;       /* collection URL: "/v1/subprocessors" */
    const char *item_path;  /* "/v1/subprocessors/{id}" */
    const char *id_prefix;  /* "sp_" */
    const field *fields;
    const filter_def *filters; /* terminated by {0} */
    role write_role;           /* create and update */
    role delete_role;
    /* Domain rules over the whole new state (before is NULL on create). */
    void (*check)(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r);
} resource;

extern const resource RES_SUBPROCESSOR;

/* Every resource, NULL-terminated (routing, indexes, outbox relay). */
extern const resource *const RESOURCES[];

#endif
