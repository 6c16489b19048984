/* compliance: the checks a legal team wants computed, not remembered (README,
 * "What it does"). Pure functions over the loaded registry:
 * no I/O, no clock — "today" is an input, so every rule is unit-tested on both
 * sides of its boundary. */
#ifndef SUBREG_COMPLIANCE_H
#define SUBREG_COMPLIANCE_H

#include <cjson/cJSON.h>

/* The rule ids, and the severities most severe first (NULL-terminated): the one
 * list of each (findings carry them; the API's filters accept only these). */
extern const char *const COMPLIANCE_RULES[];
extern const char *const COMPLIANCE_SEVERITIES[];

typedef struct {
    /* cJSON arrays of documents in API shape (as GET returns them). */
    const cJSON *subprocessors;
    const cJSON *agreements;
    const cJSON *transfers;
    const cJSON *tom_documents;
    const cJSON *countries;          /* reference: {id, name, eu, eea} */
    const cJSON *adequacy_decisions; /* reference */
    const cJSON *scc_sets;           /* reference */
    const cJSON *publications;       /* with number, published_at, effective_at, items, diff (may be NULL) */
    const cJSON *customers;          /* may be NULL */
    const cJSON *objections;         /* may be NULL */
    const char *today;               /* "YYYY-MM-DD" (UTC) */
    const char *now;                 /* RFC 3339 (UTC); rules 8 and 9 need it, NULL skips them */
    int horizon_days;                /* rule 7 and 10: "within N days" (default 30 and 365) */
} compliance_input;

/* Every finding, as a cJSON array (caller frees), ordered by severity (critical
 * first), then rule, then entity id. A finding:
 *   {"rule", "severity", "entity_type", "entity_id", "href", "subprocessor_id",
 *    "message": {"de", "en"}, "legal_ground", "since" (YYYY-MM-DD, when known)} */
cJSON *compliance_findings(const compliance_input *in);

/* Dates due within within_days of today (overdue ones included), sorted by date:
 *   {"date", "kind", "entity_type", "entity_id", "href", "subprocessor_id",
 *    "title", "overdue"} */
cJSON *compliance_expiring(const compliance_input *in, int within_days);

#endif
