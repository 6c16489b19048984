/* The one audited, versioned write of a registry document (see write.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/json.h"
#include "subreg/util.h"
#include "subreg/write.h"

cJSON *doc_public(cJSON *doc)
{
    for (cJSON *c = doc ? doc->child : NULL; c;) {
        cJSON *next = c->next;
        if (c->string && c->string[0] == '_') cJSON_Delete(cJSON_DetachItemViaPointer(doc, c));
        c = next;
    }
    return doc;
}

/* What the audit trail keeps of a state: the public members, less audit_omit. */
static cJSON *audit_view(const resource *res, const cJSON *state)
{
    if (!state) return cJSON_CreateNull();
    cJSON *v = doc_public(cJSON_Duplicate(state, 1));
    for (const char *const *k = res->audit_omit; k && *k; k++) cJSON_DeleteItemFromObjectCaseSensitive(v, *k);
    return v;
}

cJSON *doc_audit_record(const resource *res, const write_origin *by, const char *action, const char *id,
                        int64_t version, const char *at, const cJSON *before, const cJSON *after)
{
    cJSON *a = cJSON_CreateObject();
    char *aid = new_id("au_");
    cJSON_AddStringToObject(a, "id", aid);
    free(aid);
    cJSON_AddStringToObject(a, "at", at);
    cJSON_AddStringToObject(a, "actor", by->actor);
    cJSON_AddStringToObject(a, "action", action);
    cJSON_AddStringToObject(a, "entity_type", res->type);
    cJSON_AddStringToObject(a, "entity_id", id);
    cJSON_AddNumberToObject(a, "entity_version", (double)version);
    cJSON_AddStringToObject(a, "request_id", by->request_id);
    cJSON_AddItemToObject(a, "before", audit_view(res, before));
    cJSON_AddItemToObject(a, "after", audit_view(res, after));
    return a;
}

static const char *const SERVER_MEMBERS[] = {"id", "version", "created_at", "updated_at", NULL};

/* The server-owned members first, in their fixed order, then the others as they were. */
static void set_server_members(cJSON *doc, const char *id, int64_t version, const char *created, const char *updated)
{
    cJSON *rest = cJSON_CreateArray();
    while (doc->child) {
        cJSON *c = cJSON_DetachItemViaPointer(doc, doc->child);
        bool server = false;
        for (const char *const *k = SERVER_MEMBERS; *k && !server; k++) server = c->string && !strcmp(c->string, *k);
        if (server) cJSON_Delete(c);
        else cJSON_AddItemToArray(rest, c); /* keeps its name */
    }
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddNumberToObject(doc, "version", (double)version);
    cJSON_AddStringToObject(doc, "created_at", created);
    cJSON_AddStringToObject(doc, "updated_at", updated);
    while (rest->child) cJSON_AddItemToArray(doc, cJSON_DetachItemViaPointer(rest, rest->child));
    cJSON_Delete(rest);
}

store_status doc_write(const resource *res, const write_origin *by, const char *action, const char *id,
                       const cJSON *before, cJSON *after, int64_t *version)
{
    int64_t expect = before ? (int64_t)cJSON_GetNumberValue(json_get(before, "version")) : 0;
    int64_t next = expect + 1;
    if (!before && res->client_ids) {
        /* A client-chosen id may have existed before: its history goes on. */
        int64_t last = 0;
        store_status st = store_last_version(res->type, id, &last);
        if (st != ST_OK) return st;
        next = last + 1;
    }
    if (!action) action = !before ? "create" : !after ? "delete" : "update";
    char at[32];
    format_rfc3339(by->at_ms ? by->at_ms : now_ms(), at);
    if (after) {
        const char *created = before ? json_get_str(before, "created_at") : NULL;
        set_server_members(after, id, next, created ? created : at, at);
    }
    cJSON *rec = doc_audit_record(res, by, action, id, next, at, before, after);
    store_status st = store_write(res->collection, id, before ? expect : 0, after, rec);
    cJSON_Delete(rec);
    if (st == ST_OK && res->after_write) res->after_write();
    if (st == ST_OK && version) *version = next;
    return st;
}
