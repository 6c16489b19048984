/* store: everything MongoDB. One client pool; versioned single-document writes
 * made exclusive by a claim; list queries; indexes.
 *
 * A write is three steps, each an insert or a write by _id, so that nothing on
 * the request path reads a collection that grows with history:
 *   1. claim: insert {_id: "<entity_type>/<entity_id>/<version>", the audit
 *      record, the collection, claimed_ms} into claims; the unique _id lets
 *      exactly one writer claim a version, on MongoDB and on the embedded
 *      databases alike (whose own conditional updates need not be atomic);
 *   2. apply: insert / replace {_id, version: expect} / delete the document —
 *      this is the commit point;
 *   3. record: insert the audit record (and, for a change that emits an event,
 *      its event_queue entry, after the record), then delete the claim.
 * A claim is deleted only as itself (key and record id): a leftover removed
 * by a writer may be replaced by that writer's own claim of the version.
 * The claims collection holds only writes in flight and leftovers, so the
 * recovery sweep (store_recover_claims) reads all of it: a claim past its lease
 * is looked up against its document — applied → recorded now, not applied →
 * removed. A process that dies between the steps, or an apply whose outcome is
 * unknown (the database timed out or went away mid-write: the caller answers
 * 503), leaves a claim the sweep settles. So no applied change lacks its audit
 * record, and no audit record describes a change that did not happen. A writer
 * that finds its version claimed settles a leftover on the spot when the
 * document tells its outcome (see store_write), and is told ST_BUSY — not
 * ST_STALE — while a claim's outcome cannot be told yet.
 *
 * Documents cross this interface as cJSON in API shape ("id", not "_id").
 * Members starting with '_' are internal (e.g. _seed_hash) and never leave the
 * API layer. */
#ifndef SUBREG_STORE_H
#define SUBREG_STORE_H

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "subreg/util.h"

typedef enum {
    ST_OK = 0,
    ST_NOT_FOUND,
    ST_STALE,       /* version mismatch: someone else wrote first */
    ST_DUPLICATE,   /* unique key exists */
    ST_UNAVAILABLE, /* database unreachable */
    ST_BUSY,        /* another write of the same version is in flight (store_busy_wait_ms) */
    ST_ERROR,
} store_status;

/* op_timeout_ms: socketTimeoutMS unless the URI sets it — no single operation
 * waits on the database longer (set to the request deadline). */
bool store_init(const char *uri, const char *db, int pool_size, int op_timeout_ms, char *err, size_t errlen);
void store_cleanup(void);
const char *store_status_name(store_status s);

/* The deadline (monotonic ms, mono_ms(); 0: none) for this thread's database
 * work, set by the HTTP layer for the length of one request. An operation asked
 * for once it has passed returns ST_UNAVAILABLE without touching the database
 * (waiting for a pooled client counts), so a request's database work ends
 * within its deadline plus the one operation under way, itself bounded by
 * socketTimeoutMS (and the server selection and connect timeouts). */
void store_set_deadline(int64_t mono_deadline_ms);
/* Moves this request's deadline on by extra_ms (no deadline: none): for the
 * requests whose database work grows with their size (an import, an export). */
void store_extend_deadline(int64_t extra_ms);

/* Round trip to the server (readiness). */
store_status store_ping(void);
/* Creates the indexes of every collection; idempotent. */
store_status store_migrate(void);

/* Reads a document (internal '_' members included). */
store_status store_get(const char *coll, const char *id, cJSON **out);
/* store_get without the top-level members omit names (separated by commas). */
store_status store_get_omit(const char *coll, const char *id, const char *omit, cJSON **out);
/* The write protocol's one entry, called only by doc_write (write.h).
 * Writes doc (NULL: deletes the document id) if the stored version is expect
 * (0: the document must not exist yet). record is the audit record (its
 * entity_type and entity_version name the claim). ST_STALE when another writer
 * won the version, ST_DUPLICATE when a create's id exists, ST_BUSY when another
 * write of this version is in flight and its outcome cannot be told yet:
 * store_busy_wait_ms() says how long it may take at most (its lease). */
store_status store_write(const char *coll, const char *id, int64_t expect, const cJSON *doc, const cJSON *record);

/* The highest version ever claimed for an entity (0: none). A document created
 * again under a client-chosen id continues from there. */
store_status store_last_version(const char *entity_type, const char *id, int64_t *version);

/* The socket timeout in effect (socketTimeoutMS; the request deadline unless the URI sets it):
 * how long a write may still be on its way to the database. */
int store_socket_timeout_ms(void);

/* The claim lease (default 30 s): after it a claim's outcome is decided from
 * its document (see store_recover_claims). */
void store_set_claim_lease(int64_t lease_ms);
/* After ST_BUSY from store_write on this thread: ms until the other claim's lease ends. */
int64_t store_busy_wait_ms(void);

/* Settles claims older than lease_ms (see above); *settled counts them. Safe
 * only when lease_ms exceeds the socket timeout: a write the database runs
 * later than that could be settled as not applied. */
store_status store_recover_claims(int64_t lease_ms, int *settled);

/* Writes whose audit record passes this filter also queue an event
 * (event_queue, keyed by the audit record's id) when they are recorded, so an
 * applied change always gets its queued event, and a queued event always has
 * its audit record. */
void store_set_event_filter(bool (*emits)(const cJSON *record));

/* Inserts many documents in one round trip; duplicates of existing ids are
 * ignored (a repeated fan-out is harmless). */
store_status store_insert_many(const char *coll, const cJSON *docs);
/* Applies {$set: set} to each id in one round trip. */
store_status store_update_many(const char *coll, const cJSON *ids, const cJSON *sets);
/* Deletes the documents with these ids. */
store_status store_delete_ids(const char *coll, const cJSON *ids);
/* Documents matching filter (owned, modified), sorted by sort_field ascending,
 * at most limit. */
store_status store_find(const char *coll, bson_t *filter, const char *sort_field, int limit, cJSON **out);

/* Test hook: exit the process between apply and commit. */
void store_set_exit_after_apply(bool on);

/* Lists documents matching filter (owned by the caller, may be modified),
 * ordered by id (descending when desc), strictly after after_id in that order
 * (or from the start), at most limit. *more is set when further documents exist. */
store_status store_list(const char *coll, bson_t *filter, const char *after_id, bool desc, int limit, cJSON **items,
                        bool *more);

/* The same page as API JSON text: the documents' public members ('_' members
 * left out), comma-separated, appended to items (no brackets); *last_id
 * (malloc'd, NULL on an empty page) is the last document's id. No cJSON tree is
 * built: a page of 50 is one pass from the driver's buffer into the response. */
store_status store_list_text(const char *coll, bson_t *filter, const char *after_id, bool desc, int limit,
                             strbuf *items, char **last_id, bool *more);

/* Every document of a collection (in id order), internal members kept. */
store_status store_list_all(const char *coll, cJSON **out);
/* The same without one top-level field (e.g. a publication's frozen items). */
store_status store_list_all_omit(const char *coll, const char *omit, cJSON **out);

/* Every document of coll matching filter (without the top-level field omit,
 * unless NULL), in _id order (descending when desc), as the driver hands them:
 * no cJSON tree, the caller converts what it keeps. Read in pages of 1,000
 * (streamed by the driver); an _id condition in filter joins the paging (an index-served range). */
store_status store_scan(const char *coll, const bson_t *filter, const char *omit, bool desc,
                        void (*each)(const bson_t *doc, void *ctx), void *ctx);

/* Counts documents matching filter (owned by the caller, may be modified). */
store_status store_count(const char *coll, bson_t *filter, int64_t *count);

/* Bookkeeping documents, written as they are without versions or audit
 * (idempotency records, claims, leases, queued and sent events, deliveries,
 * stamps). A registry document is never written with these: doc_write (write.h).
 * store_insert: ST_DUPLICATE if the id exists. store_update: {$set: set} on the id. */
store_status store_insert(const char *coll, const cJSON *doc);
store_status store_update(const char *coll, const char *id, const cJSON *set);
store_status store_delete(const char *coll, const char *id);

/* Change stamps: one small document per name (in stamps) whose token moves on
 * every change of what it stands for, on any instance. A thread that keeps a
 * copy of a collection reads the stamp (by _id) each round and reloads only
 * when it moved. */
store_status store_stamp_bump(const char *name);
/* The current token (empty when never bumped) into buf. */
store_status store_stamp_read(const char *name, char *buf, size_t len);

/* Stored documents (PDFs) as chunks of at most chunk bytes in document_chunks,
 * keyed "<id>:<n>". Works on MongoDB and FerretDB alike (no GridFS). */
store_status store_put_chunks(const char *id, const unsigned char *data, size_t len, size_t chunk);
/* Calls fn for each chunk in order; stops when fn returns false. */
store_status store_read_chunks(const char *id, bool (*fn)(const unsigned char *, size_t, void *), void *ctx,
                               size_t *total);
store_status store_delete_chunks(const char *id);

#endif
