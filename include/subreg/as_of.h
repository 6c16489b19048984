/* as_of: the registry as it was at the end of a past day, reconstructed from
 * the audit trail (every change's record carries the state after it), for
 * ?as_of= on the compliance endpoints and on a registry document's GET.
 *
 * A day is a calendar day in SUBREG_TIMEZONE (util.h local_zone_set). The state
 * of an entity at the end of day D is the "after" of its audit record with the
 * highest entity_version among those recorded before D+1 began in that zone
 * (absent if that record is a delete): "on 1 March" counts everything recorded
 * on 1 March. The audit records are read by _id, whose first digits are the
 * time of the change (new_id_floor): an index-served range. */
#ifndef SUBREG_AS_OF_H
#define SUBREG_AS_OF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "subreg/http.h"
#include "subreg/resource.h"
#include "subreg/store.h"

typedef struct {
    char date[16];  /* the day evaluated, YYYY-MM-DD */
    int64_t end_ms; /* when the next day begins in the zone */
    bool past;      /* before today: the state is reconstructed; else today's documents */
} as_of;

/* ?as_of=YYYY-MM-DD, default today in the zone. Answers the request itself and
 * returns false when the date is malformed (400), in the future or before the
 * first audit record (422, naming the earliest day available). */
bool as_of_param(req *r, as_of *out);

/* Adds "as_of" and "time_zone" to a response body. */
void as_of_describe(cJSON *body, const as_of *when);

/* The documents of n resources at the end of the day: out[i] is an array (in
 * id order) of res[i]'s documents that existed then, in their audited shape
 * (public members; audit_omit members are not filled in). Reads the audit trail
 * up to that day once: linear in its length. */
store_status registry_as_of(const as_of *when, const resource *const *res, size_t n, cJSON **out);

/* One document at the end of the day (ST_NOT_FOUND: it did not exist then),
 * its audit_omit members (frozen copies) taken from today's document. */
store_status document_as_of(const resource *res, const char *id, const as_of *when, cJSON **out);

/* Whether a resource's documents are in the audit trail (the delivery thread's
 * bookkeeping, deliveries and events, is not). */
bool as_of_supported(const resource *res);

/* Copies res's audit_omit members (frozen at creation, e.g. a publication's
 * items) from today's document into a reconstructed one. */
store_status as_of_fill_omitted(const resource *res, cJSON *doc);

#endif
