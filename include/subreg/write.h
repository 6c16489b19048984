/* write: the one audited, versioned change of a registry document.
 *
 * Every create, update and delete of a document the registry keeps goes through
 * doc_write: the API handlers (crud.c, documents, publications, webhook secret
 * rotation), the delivery thread's subscription health, the scheduler's "took
 * effect", and migrate's seeds. Nothing else calls store_write.
 *
 * doc_write sets the server-owned members of the new state (id, version,
 * created_at, updated_at: at the front, in that order), builds the audit record
 * from the public projections of before and after (no '_' members, none of the
 * descriptor's audit_omit members), and runs store.h's claim → apply → record.
 * On ST_OK the descriptor's after_write hook has run.
 *
 * Ownership: before is only read; after is changed in place (its server-owned
 * members) and stays the caller's. What a failure leaves: nothing, except for
 * ST_UNAVAILABLE in the middle of the apply, which leaves a claim that
 * the recovery sweep settles (see store.h). ST_STALE: another writer took the
 * version; ST_DUPLICATE: a create's id exists; ST_BUSY: another write of this version is in flight (store.h). */
#ifndef SUBREG_WRITE_H
#define SUBREG_WRITE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "subreg/resource.h"
#include "subreg/store.h"

/* Who changes the document: a request's principal, or a background actor. */
typedef struct {
    const char *actor;      /* the token's sub, or a thread's name ("subreg-migrate") */
    const char *request_id; /* the request's id, or one made for the round */
    int64_t at_ms;          /* when it happens, if the caller stamps it elsewhere too (0: now) */
} write_origin;

/* before: the stored document (internal members included), NULL for a create.
 * after: the new state, NULL for a delete. action: NULL names the change by its
 * shape ("create", "update", "delete"); an update may carry another verb
 * ("effective"). A create's version is 1, or for client-chosen ids one above
 * the highest ever claimed (the entity's history goes on). *version (optional)
 * receives the version written. */
store_status doc_write(const resource *res, const write_origin *by, const char *action, const char *id,
                       const cJSON *before, cJSON *after, int64_t *version);

/* The audit record of a change (what doc_write records; a restore records its
 * documents with it too): before/after as the trail keeps them (public
 * members, less the descriptor's audit_omit; NULL gives null). */
cJSON *doc_audit_record(const resource *res, const write_origin *by, const char *action, const char *id,
                        int64_t version, const char *at, const cJSON *before, const cJSON *after);

/* The document as clients see it: '_' members removed in place; returns doc. */
cJSON *doc_public(cJSON *doc);

#endif
