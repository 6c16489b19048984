/* The registry's contract resources: agreements (DPAs under Art. 28 and other
 * contracts), international transfers (Art. 44–49, with the SCC options and the
 * transfer impact assessment), TOM documents (Art. 32) and customers (the
 * controllers, with what they were promised under Art. 28(2)). */
#include <stdio.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/resource.h"

const field FIELD_COUNTRY = {.type = FT_COUNTRY};
const field FIELD_BOOL = {.type = FT_BOOL};
static const field FIELD_SP_REF = {.type = FT_REF, .ref = COLL_SUBPROCESSORS};
const field FIELD_SERVICE_REF = {.type = FT_REF, .ref = COLL_SERVICES};

/* ---- helpers for the domain rules ------------------------------------- */

static bool has(const cJSON *doc, const char *name)
{
    return json_get(doc, name) != NULL;
}

static bool str_is(const cJSON *doc, const char *name, const char *value)
{
    const char *v = json_get_str(doc, name);
    return v && strcmp(v, value) == 0;
}

/* a ≤ b for two optional dates; when either is absent the order holds. */
static bool dates_ordered(const cJSON *doc, const char *a, const char *b)
{
    const char *x = json_get_str(doc, a), *y = json_get_str(doc, b);
    return !x || !y || strcmp(x, y) <= 0;
}

/* ---- agreements ---------------------------------------------------------- */

static const char *const AGREEMENT_TYPES[] = {"dpa", "msa", "sla", "nda", "other", NULL};
static const char *const AGREEMENT_STATUSES[] = {"draft", "active", "expired", "terminated", "superseded", NULL};
static const char *const AUTHORISATIONS[] = {"specific", "general", NULL};

static const field AGREEMENT_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "subprocessor_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = COLL_SUBPROCESSORS},
    {.name = "type", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = AGREEMENT_TYPES},
    {.name = "title", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = AGREEMENT_STATUSES, .def = "\"draft\""},
    {.name = "signed_on", .type = FT_DATE},
    {.name = "effective_on", .type = FT_DATE},
    {.name = "expires_on", .type = FT_DATE},
    {.name = "review_on", .type = FT_DATE},
    {.name = "authorisation", .type = FT_ENUM, .enums = AUTHORISATIONS},
    {.name = "notice_days", .type = FT_INT, .min = 0, .max = 365},
    {.name = "objection_days", .type = FT_INT, .min = 0, .max = 365},
    {.name = "document_id", .type = FT_REF, .ref = COLL_DOCUMENTS},
    {.name = "superseded_by", .type = FT_REF, .ref = COLL_AGREEMENTS},
    {.name = "reference", .type = FT_STRING, .min = 1, .max = 100},
    {.name = "notes", .type = FT_STRING, .min = 0, .max = 10000},
    {0},
};

static const filter_def AGREEMENT_FILTERS[] = {
    {"subprocessor_id", "subprocessor_id", &FIELD_SP_REF, NULL},
    {"type", "type", &(const field){.type = FT_ENUM, .enums = AGREEMENT_TYPES}, NULL},
    {"status", "status", &(const field){.type = FT_ENUM, .enums = AGREEMENT_STATUSES}, NULL},
    {0},
};

static void agreement_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    if (!dates_ordered(after, "effective_on", "expires_on"))
        verrors_add(errs, "/expires_on", "must not be before effective_on");
    if (!dates_ordered(after, "signed_on", "expires_on"))
        verrors_add(errs, "/expires_on", "must not be before signed_on");
    /* Art. 28(9): the contract is in writing; an active one has been signed. */
    if (str_is(after, "status", "active") && !has(after, "signed_on"))
        verrors_add(errs, "/signed_on", "required when status is active");
    if (str_is(after, "status", "superseded") && !has(after, "superseded_by"))
        verrors_add(errs, "/superseded_by", "required when status is superseded");
    const char *self = before ? json_get_str(before, "id") : NULL, *by = json_get_str(after, "superseded_by");
    if (self && by && strcmp(self, by) == 0) verrors_add(errs, "/superseded_by", "an agreement cannot supersede itself");
    if (str_is(after, "type", "dpa") && str_is(after, "authorisation", "general") && !has(after, "notice_days"))
        verrors_add(errs, "/notice_days", "required for a DPA with general authorisation (Art. 28(2))");
    if (errs->count) r->status = 400;
}

static const char *const AGREEMENT_TRANSITIONS[][2] = {
    {"draft", "active"},    {"draft", "terminated"},  {"active", "expired"},
    {"active", "terminated"}, {"active", "superseded"}, {"expired", "active"}, {NULL, NULL}};

const resource RES_AGREEMENT = {
    .type = "agreement",
    .collection = COLL_AGREEMENTS,
    .path = "/v1/agreements",
    .item_path = "/v1/agreements/{id}",
    .id_prefix = "ag_",
    .fields = AGREEMENT_FIELDS,
    .filters = AGREEMENT_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = agreement_check,
    .transitions = AGREEMENT_TRANSITIONS,
    .events = EVENTS_CHANGES,
};

/* ---- transfers ------------------------------------------------------------ */

static const char *const REGIMES[] = {"eu", "uk", "ch", NULL};
static const char *const BASES[] = {"adequacy", "dpf",  "scc_2021", "uk_idta",  "uk_addendum", "ch_scc", "bcr",
                                    "art49",    "scc_2001", "scc_2004", "scc_2010", "none", NULL};
static const char *const DEROGATIONS[] = {"a", "b", "c", "d", "e", "f", "g", NULL};
static const char *const RISKS[] = {"low", "medium", "high", NULL};

static const field SCC_OPTIONS[] = {
    {.name = "docking_clause", .type = FT_BOOL},
    {.name = "clause9_option", .type = FT_ENUM, .enums = AUTHORISATIONS},
    {.name = "clause9_notice_days", .type = FT_INT, .min = 0, .max = 365},
    {.name = "governing_law", .type = FT_COUNTRY},
    {.name = "forum", .type = FT_COUNTRY},
    {.name = "supervisory_authority", .type = FT_STRING, .min = 1, .max = 200},
    {0},
};

static const field MEASURE = {.type = FT_STRING, .min = 1, .max = 500};

static const field TIA[] = {
    {.name = "performed_on", .type = FT_DATE, .flags = FF_REQUIRED},
    {.name = "next_review_on", .type = FT_DATE},
    {.name = "risk", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = RISKS},
    {.name = "supplementary_measures", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 50, .item = &MEASURE},
    {.name = "document_id", .type = FT_REF, .ref = COLL_DOCUMENTS},
    {0},
};

static const field TRANSFER_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "subprocessor_id", .type = FT_REF, .flags = FF_REQUIRED, .ref = COLL_SUBPROCESSORS},
    {.name = "destination_country", .type = FT_COUNTRY, .flags = FF_REQUIRED},
    {.name = "regime", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = REGIMES, .def = "\"eu\""},
    {.name = "basis", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = BASES},
    {.name = "scc_module", .type = FT_INT, .min = 1, .max = 4},
    {.name = "scc_options", .type = FT_OBJECT, .fields = SCC_OPTIONS},
    {.name = "art49_derogation", .type = FT_ENUM, .enums = DEROGATIONS},
    {.name = "bcr_reference", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "recipient_in_adequacy_scope", .type = FT_BOOL},
    {.name = "contract_signed_on", .type = FT_DATE},
    {.name = "valid_from", .type = FT_DATE},
    {.name = "valid_until", .type = FT_DATE},
    {.name = "agreement_id", .type = FT_REF, .ref = COLL_AGREEMENTS},
    {.name = "tia", .type = FT_OBJECT, .fields = TIA},
    {.name = "notes", .type = FT_STRING, .min = 0, .max = 10000},
    {0},
};

static const filter_def TRANSFER_FILTERS[] = {
    {"subprocessor_id", "subprocessor_id", &FIELD_SP_REF, NULL},
    {"country", "destination_country", &FIELD_COUNTRY, NULL},
    {"basis", "basis", &(const field){.type = FT_ENUM, .enums = BASES}, NULL},
    {"regime", "regime", &(const field){.type = FT_ENUM, .enums = REGIMES}, NULL},
    {0},
};

static void transfer_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    (void)before;
    const char *basis = json_get_str(after, "basis");
    bool scc = basis && (strcmp(basis, "scc_2021") == 0 || strcmp(basis, "ch_scc") == 0 ||
                         strcmp(basis, "uk_addendum") == 0);
    if (scc && !has(after, "scc_module"))
        verrors_add(errs, "/scc_module", "required for the 2021 SCCs (also under the UK Addendum and for Switzerland)");
    if (!scc && has(after, "scc_module")) verrors_add(errs, "/scc_module", "only for the 2021 SCCs");
    if (basis && strcmp(basis, "art49") == 0 && !has(after, "art49_derogation"))
        verrors_add(errs, "/art49_derogation", "required for an Art. 49 derogation: its letter (a to g)");
    if (basis && strcmp(basis, "bcr") == 0 && !has(after, "bcr_reference"))
        verrors_add(errs, "/bcr_reference", "required for binding corporate rules (Art. 47)");
    if (!dates_ordered(after, "valid_from", "valid_until"))
        verrors_add(errs, "/valid_until", "must not be before valid_from");
    /* a contract cannot be concluded on clauses that did not exist yet */
    static const char *const since[][3] = {
        {"scc_2021", "2021-06-27", "the 2021 SCCs apply from 2021-06-27 ((EU) 2021/914, Art. 4)"},
        {"ch_scc", "2021-06-27", "the 2021 SCCs apply from 2021-06-27 ((EU) 2021/914, Art. 4)"},
        {"uk_addendum", "2022-03-21", "the UK Addendum is in force from 2022-03-21"},
        {"uk_idta", "2022-03-21", "the UK IDTA is in force from 2022-03-21"},
    };
    const char *signed_on = json_get_str(after, "contract_signed_on");
    for (size_t i = 0; basis && signed_on && i < sizeof since / sizeof since[0]; i++)
        if (strcmp(basis, since[i][0]) == 0 && strcmp(signed_on, since[i][1]) < 0)
            verrors_add(errs, "/contract_signed_on", "%s", since[i][2]);
    const cJSON *tia = json_get(after, "tia");
    if (tia && !dates_ordered(tia, "performed_on", "next_review_on"))
        verrors_add(errs, "/tia/next_review_on", "must not be before performed_on");
    if (errs->count) r->status = 400;
}

const resource RES_TRANSFER = {
    .type = "transfer",
    .collection = COLL_TRANSFERS,
    .path = "/v1/transfers",
    .item_path = "/v1/transfers/{id}",
    .id_prefix = "tr_",
    .fields = TRANSFER_FIELDS,
    .filters = TRANSFER_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = transfer_check,
    .events = EVENTS_CHANGES,
};

/* ---- TOM documents (Art. 32) ---------------------------------------------- */

static const char *const OWNERS[] = {"self", "subprocessor", NULL};
static const char *const TOM_STATUSES[] = {"draft", "active", "superseded", "archived", NULL};

/* Art. 32(1)(a)–(d). */
static const field MEASURES[] = {
    {.name = "pseudonymisation_encryption", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 100, .item = &MEASURE},
    {.name = "confidentiality_integrity_availability", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 100,
     .item = &MEASURE},
    {.name = "restore_after_incident", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 100, .item = &MEASURE},
    {.name = "regular_testing", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 100, .item = &MEASURE},
    {0},
};

static const field TOM_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "owner", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = OWNERS},
    {.name = "subprocessor_id", .type = FT_REF, .ref = COLL_SUBPROCESSORS},
    {.name = "title", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "version_label", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 50},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = TOM_STATUSES, .def = "\"draft\""},
    {.name = "effective_on", .type = FT_DATE, .flags = FF_REQUIRED},
    {.name = "next_review_on", .type = FT_DATE},
    {.name = "measures", .type = FT_OBJECT, .flags = FF_REQUIRED, .fields = MEASURES, .def = "{}"},
    {.name = "document_id", .type = FT_REF, .ref = COLL_DOCUMENTS},
    {.name = "notes", .type = FT_STRING, .min = 0, .max = 10000},
    {0},
};

static const filter_def TOM_FILTERS[] = {
    {"owner", "owner", &(const field){.type = FT_ENUM, .enums = OWNERS}, NULL},
    {"subprocessor_id", "subprocessor_id", &FIELD_SP_REF, NULL},
    {"status", "status", &(const field){.type = FT_ENUM, .enums = TOM_STATUSES}, NULL},
    {0},
};

static void tom_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    (void)before;
    bool sp = str_is(after, "owner", "subprocessor");
    if (sp && !has(after, "subprocessor_id"))
        verrors_add(errs, "/subprocessor_id", "required when the owner is a subprocessor");
    if (!sp && has(after, "subprocessor_id"))
        verrors_add(errs, "/subprocessor_id", "only when the owner is a subprocessor");
    if (!dates_ordered(after, "effective_on", "next_review_on"))
        verrors_add(errs, "/next_review_on", "must not be before effective_on");
    if (errs->count) r->status = 400;
}

static const char *const TOM_TRANSITIONS[][2] = {{"draft", "active"},       {"active", "superseded"},
                                                 {"active", "archived"},    {"superseded", "archived"},
                                                 {"draft", "archived"},     {NULL, NULL}};

const resource RES_TOM = {
    .type = "tom_document",
    .collection = COLL_TOM_DOCUMENTS,
    .path = "/v1/tom-documents",
    .item_path = "/v1/tom-documents/{id}",
    .id_prefix = "tom_",
    .fields = TOM_FIELDS,
    .filters = TOM_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = tom_check,
    .transitions = TOM_TRANSITIONS,
    .events = EVENTS_CHANGES,
};

/* ---- customers (controllers) --------------------------------------------- */

static const char *const CONTACT_ROLES[] = {"privacy", "legal", "technical", "commercial", NULL};
static const char *const LANGUAGES[] = {"de", "en", NULL};
static const char *const CUSTOMER_STATUSES[] = {"active", "inactive", NULL};

static const field CUSTOMER_CONTACT[] = {
    {.name = "name", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "email", .type = FT_EMAIL, .flags = FF_REQUIRED},
    {.name = "role", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = CONTACT_ROLES},
    {.name = "language", .type = FT_ENUM, .enums = LANGUAGES},
    {0},
};
static const field CUSTOMER_CONTACT_ITEM = {.type = FT_OBJECT, .fields = CUSTOMER_CONTACT};

static const field CUSTOMER_FIELDS[] = {
    SERVER_FIELDS,
    {.name = "name", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "customer_number", .type = FT_STRING, .min = 1, .max = 50},
    {.name = "country", .type = FT_COUNTRY},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = CUSTOMER_STATUSES, .def = "\"active\""},
    {.name = "authorisation", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = AUTHORISATIONS, .def = "\"general\""},
    {.name = "notice_days", .type = FT_INT, .flags = FF_REQUIRED, .min = 0, .max = 365, .def = "30"},
    {.name = "objection_days", .type = FT_INT, .flags = FF_REQUIRED, .min = 0, .max = 365, .def = "30"},
    {.name = "contacts", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 20, .item = &CUSTOMER_CONTACT_ITEM},
    {.name = "dpa_agreement_reference", .type = FT_STRING, .min = 1, .max = 100},
    /* the services it buys (absent: all): only their changes are announced to it */
    SERVICES_FIELD,
    {.name = "notes", .type = FT_STRING, .min = 0, .max = 10000},
    {0},
};

static const filter_def CUSTOMER_FILTERS[] = {
    {"status", "status", &(const field){.type = FT_ENUM, .enums = CUSTOMER_STATUSES}, NULL},
    {"authorisation", "authorisation", &(const field){.type = FT_ENUM, .enums = AUTHORISATIONS}, NULL},
    {0},
};

const resource RES_CUSTOMER = {
    .type = "customer",
    .collection = COLL_CUSTOMERS,
    .path = "/v1/customers",
    .item_path = "/v1/customers/{id}",
    .id_prefix = "cu_",
    .fields = CUSTOMER_FIELDS,
    .filters = CUSTOMER_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = NULL,
    .events = EVENTS_CHANGES,
};

/* ---- services (what the processor sells) ---------------------------------- */

static const char *const SERVICE_STATUSES[] = {"active", "retired", NULL};

static const field SERVICE_FIELDS[] = {
    CLIENT_ID_FIELDS,
    {.name = "name", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 200},
    {.name = "description", .type = FT_LOCALIZED, .max = 2000},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = SERVICE_STATUSES, .def = "\"active\""},
    /* offered on the public list's service selector and ?service= */
    {.name = "public", .type = FT_BOOL, .flags = FF_REQUIRED, .def = "true"},
    /* the order on the selector (then by id) */
    {.name = "sort", .type = FT_INT, .min = 0, .max = 1000},
    {0},
};

static const filter_def SERVICE_FILTERS[] = {
    {"status", "status", &(const field){.type = FT_ENUM, .enums = SERVICE_STATUSES}, NULL},
    {"public", "public", &FIELD_BOOL, NULL},
    {0},
};

const resource RES_SERVICE = {
    .type = "service",
    .collection = COLL_SERVICES,
    .path = "/v1/services",
    .item_path = "/v1/services/{id}",
    .client_ids = true,
    .fields = SERVICE_FIELDS,
    .filters = SERVICE_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = NULL,
    .events = EVENTS_CHANGES,
};
