/* Every resource the generic handlers serve, in routing order. */
#include <stdio.h>
#include <string.h>

#include "subreg/json.h"
#include "subreg/resource.h"

const resource *const RESOURCES[] = {&RES_SUBPROCESSOR, &RES_AGREEMENT, &RES_TRANSFER, &RES_TOM, &RES_SERVICE, &RES_CUSTOMER,
                                     &RES_DOCUMENT,     &RES_OBJECTION, &RES_COUNTRY,  &RES_ADEQUACY, &RES_SCC_SET,
                                     &RES_WEBHOOK,      &RES_DELIVERY,  &RES_EVENT,    NULL};

const resource *resource_by_type(const char *type)
{
    for (int i = 0; RESOURCES[i]; i++)
        if (strcmp(RESOURCES[i]->type, type) == 0) return RESOURCES[i];
    /* written by its own handlers, so not among the generic routes */
    return strcmp(RES_PUBLICATION.type, type) == 0 ? &RES_PUBLICATION : NULL;
}

bool resource_roles_declared(const resource *res)
{
    return res->read_role > ROLE_NONE && res->write_role > ROLE_NONE && res->delete_role > ROLE_NONE;
}

/* The lifecycle: 0 when the status change (or a create's status) is allowed. */
static int check_status(const resource *res, const cJSON *before, const cJSON *after, char *detail, size_t n)
{
    const char *to = json_get_str(after, "status");
    if (!to) return 0;
    if (!before) {
        if (!res->initial_statuses) return 0;
        for (const char *const *s = res->initial_statuses; *s; s++)
            if (strcmp(*s, to) == 0) return 0;
        snprintf(detail, n, "a %s cannot be created as %s", res->type, to);
        return 422;
    }
    const char *from = json_get_str(before, "status");
    if (!res->transitions || !from || strcmp(from, to) == 0) return 0;
    for (const char *const (*t)[2] = res->transitions; (*t)[0]; t++)
        if (strcmp((*t)[0], from) == 0 && strcmp((*t)[1], to) == 0) return 0;
    snprintf(detail, n, "status cannot change from %s to %s", from, to);
    return 422;
}

void resource_rules(const resource *res, const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    if (res->check) res->check(before, after, errs, r);
    if (r->status == 0) r->status = check_status(res, before, after, r->detail, sizeof r->detail);
}
