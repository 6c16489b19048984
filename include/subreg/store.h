/* store: everything MongoDB. One client pool; versioned single-document writes;
 * the per-document outbox that makes audit entries (and, later, events) survive a
 * crash without multi-document transactions; cursors; indexes.
 *
 * Documents cross this interface as cJSON in API shape ("id", not "_id"). Internal
 * members start with '_' and never leave the store:
 *   _outbox          array of records (audit entries) written with the change
 *   _outbox_pending  true while _outbox holds records not yet relayed
 *   _deleted         tombstone of a delete whose outbox is not yet relayed */
#ifndef SUBREG_STORE_H
#define SUBREG_STORE_H

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ST_OK = 0,
    ST_NOT_FOUND,
    ST_STALE,       /* version mismatch: someone else wrote first */
    ST_DUPLICATE,   /* unique key exists */
    ST_UNAVAILABLE, /* database unreachable */
    ST_ERROR,
} store_status;

bool store_init(const char *uri, const char *db, int pool_size, char *err, size_t errlen);
void store_cleanup(void);
const char *store_status_name(store_status s);

/* Round trip to the server (readiness). */
store_status store_ping(void);
/* Creates the indexes of every collection; idempotent. */
store_status store_migrate(void);

/* Reads a live document (tombstones count as absent). */
store_status store_get(const char *coll, const char *id, cJSON **out);
/* Inserts a new document with its outbox records. */
store_status store_insert(const char *coll, const cJSON *doc, const cJSON *outbox_record);
/* Replaces the document whose version is expect_version; the new document's
 * version must be expect_version + 1. The record joins the outbox. */
store_status store_replace(const char *coll, const cJSON *doc, int64_t expect_version, const cJSON *outbox_record);
/* Marks the document deleted (tombstone) at version expect_version; the relay
 * removes it once its outbox is relayed. */
store_status store_delete(const char *coll, const char *id, int64_t expect_version, const cJSON *outbox_record);

/* Relays one document's outbox into the audit collection, then clears it (or
 * removes the tombstone). Safe to repeat: records carry unique ids. */
store_status store_flush_outbox(const char *coll, const char *id);
/* Sweeps every collection for documents with pending outboxes (crash recovery). */
store_status store_relay_pending(const char *const *collections, int *relayed);

/* Lists live documents matching filter (owned by the caller, may be modified),
 * ordered by id, strictly after after_id (or from the start), at most limit.
 * *more is set when further documents exist. */
store_status store_list(const char *coll, bson_t *filter, const char *after_id, int limit, cJSON **items,
                        bool *more);

/* Inserts a document as is (idempotency records); ST_DUPLICATE if the id exists. */
store_status store_put_raw(const char *coll, const cJSON *doc);
store_status store_get_raw(const char *coll, const char *id, cJSON **out);
store_status store_update_raw(const char *coll, const char *id, const cJSON *set);
store_status store_delete_raw(const char *coll, const char *id);

#endif
