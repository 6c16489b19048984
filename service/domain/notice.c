/* The Art. 28(2) notice as resources: publications (immutable, numbered versions
 * of the public list, written by api/publications.c and its scheduler) and the
 * customers' objections to them (a generic resource nested under its
 * publication). */
#include <stdio.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/publication.h"
#include "subreg/resource.h"

/* ---- objections: a generic resource, nested under its publication --------- */

static const char *const OBJECTION_STATUSES[] = {"open", "withdrawn", "resolved", NULL};

static const field OBJECTION_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "publication_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = COLL_PUBLICATIONS},
    {.name = "customer_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = COLL_CUSTOMERS},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = OBJECTION_STATUSES, .def = "\"open\""},
    {.name = "received_on", .type = FT_DATE},
    {.name = "reason", .type = FT_STRING, .min = 1, .max = 4000},
    {.name = "resolution", .type = FT_STRING, .min = 1, .max = 4000},
    /* absent: every service of the customer that the publication touches */
    SERVICES_FIELD,
    {0},
};

static const filter_def OBJECTION_FILTERS[] = {
    {"status", "status", &(const field){.type = FT_ENUM, .enums = OBJECTION_STATUSES}, NULL},
    {"customer_id", "customer_id", &(const field){.type = FT_REF, .ref = COLL_CUSTOMERS}, NULL},
    {"publication_id", "publication_id", &(const field){.type = FT_REF, .ref = COLL_PUBLICATIONS}, NULL},
    {0},
};

static void objection_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    /* The publication and the customer an objection is about never change. */
    if (before) {
        static const char *const fixed[] = {"publication_id", "customer_id", NULL};
        for (const char *const *f = fixed; *f; f++) {
            const char *a = json_get_str(before, *f), *b = json_get_str(after, *f);
            if (a && b && strcmp(a, b) != 0) {
                char ptr[64];
                snprintf(ptr, sizeof ptr, "/%s", *f);
                verrors_add(errs, ptr, "cannot be changed; record a new objection instead");
            }
        }
    }
    if (errs->count) r->status = 400;
}

const resource RES_OBJECTION = {
    .type = "objection",
    .collection = COLL_OBJECTIONS,
    .path = "/v1/objections",
    .item_path = "/v1/objections/{id}",
    .id_prefix = "ob_",
    .parent_path = "/v1/publications/{id}/objections",
    .parent_field = "publication_id",
    .fields = OBJECTION_FIELDS,
    .filters = OBJECTION_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = objection_check,
    .io_check = objection_check_services,
    .events = EVENTS_CHANGES,
};

/* The publication as an audited entity (not a generic CRUD resource). */
static const field PUBLICATION_FIELDS[] = {SERVER_FIELDS, {0}};
const resource RES_PUBLICATION = {
    .type = "publication",
    .collection = COLL_PUBLICATIONS,
    .path = "/v1/publications",
    .item_path = "/v1/publications/{id}",
    .fields = PUBLICATION_FIELDS,
    .filters = (const filter_def[]){{0}},
    .read_role = ROLE_READER,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    /* the audit trail keeps the summary and diff, not the frozen items */
    .audit_omit = (const char *const[]){"items", "service_changes", NULL},
    /* publication.announced on create, publication.effective when it takes effect */
    .events = EVENTS_OWN,
    .after_write = publications_changed,
};
