/* collections: the name of every MongoDB collection the service uses, and of the
 * actors that write without a request. One home for each: descriptors, queries,
 * indexes and references all use these. */
#ifndef SUBREG_COLLECTIONS_H
#define SUBREG_COLLECTIONS_H

/* The registry (resource descriptors). */
#define COLL_SUBPROCESSORS "subprocessors"
#define COLL_AGREEMENTS "agreements"
#define COLL_TRANSFERS "transfers"
#define COLL_TOM_DOCUMENTS "tom_documents"
#define COLL_CUSTOMERS "customers"
#define COLL_SERVICES "services"
#define COLL_DOCUMENTS "documents"
#define COLL_OBJECTIONS "objections"
#define COLL_PUBLICATIONS "publications"
#define COLL_COUNTRIES "ref_countries"
#define COLL_ADEQUACY "ref_adequacy_decisions"
#define COLL_SCC_SETS "ref_scc_sets"
#define COLL_WEBHOOKS "webhooks"
#define COLL_DELIVERIES "deliveries"
#define COLL_EVENTS "events"

/* The write protocol and its bookkeeping (store.h, write.h). */
#define COLL_CLAIMS "claims"               /* writes in flight: one per entity version */
#define COLL_AUDIT "audit"                 /* audit records of applied changes */
#define COLL_EVENT_QUEUE "event_queue"     /* changes not yet fanned out */
#define COLL_DOCUMENT_CHUNKS "document_chunks"
#define COLL_IDEMPOTENCY "idempotency"
#define COLL_SEED_LOG "seed_log"           /* what migrate seeded */
#define COLL_DELIVERY_DUE "delivery_due"   /* retries, by due time */
#define COLL_DELIVERY_LEASES "delivery_leases"
#define COLL_STAMPS "stamps"               /* change tokens (webhook subscriptions) */

/* Who writes without a request (the audit trail's actor). */
#define ACTOR_MIGRATE "subreg-migrate"
#define ACTOR_SCHEDULER "subreg-scheduler"
#define ACTOR_DELIVERY "subreg-delivery"

#endif
