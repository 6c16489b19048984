/* Reference law: countries (EU/EEA membership), the adequacy decisions of each
 * transfer regime (the Commission's under GDPR Art. 45, the UK's adequacy
 * regulations, Annex 1 of the Swiss Data Protection Ordinance) and the standard
 * contractual clause sets. Seeded by
 * `subreg migrate` from the JSON files in data/reference, readable by readers, editable by
 * admins — the law changes, and an admin's edit survives the next migrate. */
#include <string.h>

#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/resource.h"

static const field COUNTRY_FIELDS[] = {
    CLIENT_ID_FIELDS,
    {.name = "name", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 200},
    {.name = "eu", .type = FT_BOOL, .flags = FF_REQUIRED},
    {.name = "eea", .type = FT_BOOL, .flags = FF_REQUIRED},
    {.name = "part_of", .type = FT_COUNTRY},
    {0},
};

static const filter_def COUNTRY_FILTERS[] = {
    {"eu", "eu", &FIELD_BOOL, NULL},
    {"eea", "eea", &FIELD_BOOL, NULL},
    {0},
};

static void country_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    (void)before;
    const char *id = json_get_str(after, "id");
    if (id && !is_country_code(id)) verrors_add(errs, "/id", "must be an ISO 3166-1 alpha-2 code in upper case");
    /* Every EU member state is in the EEA. */
    if (cJSON_IsTrue(json_get(after, "eu")) && !cJSON_IsTrue(json_get(after, "eea")))
        verrors_add(errs, "/eea", "an EU member state is in the EEA");
    const char *part_of = json_get_str(after, "part_of");
    if (part_of && (!cJSON_IsTrue(json_get(after, "eu")) || (id && strcmp(part_of, id) == 0)))
        verrors_add(errs, "/part_of", "only for EU territory of another member state");
    if (errs->count) r->status = 400;
}

const resource RES_COUNTRY = {
    .type = "country",
    .collection = COLL_COUNTRIES,
    .path = "/v1/reference/countries",
    .item_path = "/v1/reference/countries/{id}",
    .client_ids = true,
    .fields = COUNTRY_FIELDS,
    .filters = COUNTRY_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    .check = country_check,
    .events = EVENTS_CHANGES,
};

/* The transfer regimes: the EU GDPR, the UK GDPR, the Swiss FADP. */
static const char *const REGIMES[] = {"eu", "uk", "ch", NULL};
static const char *const SCOPES[] = {"full", "partial", NULL};
static const char *const CONDITIONS[] = {"none", "dpf_participation", "recipient_in_scope", NULL};
static const char *const ADEQUACY_STATUSES[] = {"in_force", "invalidated", NULL};

static const field ADEQUACY_FIELDS[] = {
    CLIENT_ID_FIELDS,
    /* whose law: an EU decision counts only for EU transfers, a UK regulation only for UK ones */
    {.name = "regime", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = REGIMES, .def = "\"eu\""},
    {.name = "jurisdiction", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 200},
    {.name = "country", .type = FT_COUNTRY},
    {.name = "act", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "adopted_on", .type = FT_DATE, .flags = FF_REQUIRED},
    /* when it starts to count, if later than adopted_on (a UK SI "comes into force" weeks after it is made) */
    {.name = "in_force_from", .type = FT_DATE},
    {.name = "scope", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = SCOPES},
    {.name = "condition", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = CONDITIONS, .def = "\"none\""},
    {.name = "scope_note", .type = FT_LOCALIZED, .max = 2000},
    {.name = "valid_until", .type = FT_DATE},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = ADEQUACY_STATUSES, .def = "\"in_force\""},
    {.name = "under_challenge", .type = FT_BOOL, .flags = FF_REQUIRED, .def = "false"},
    {.name = "challenge_note", .type = FT_LOCALIZED, .max = 2000},
    {.name = "source_url", .type = FT_URL},
    {.name = "note", .type = FT_LOCALIZED, .max = 2000},
    {0},
};

static const filter_def ADEQUACY_FILTERS[] = {
    {"regime", "regime", &(const field){.type = FT_ENUM, .enums = REGIMES}, NULL},
    {"country", "country", &FIELD_COUNTRY, NULL},
    {"scope", "scope", &(const field){.type = FT_ENUM, .enums = SCOPES}, NULL},
    {"status", "status", &(const field){.type = FT_ENUM, .enums = ADEQUACY_STATUSES}, NULL},
    {0},
};

static void adequacy_check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    (void)before;
    const char *scope = json_get_str(after, "scope"), *cond = json_get_str(after, "condition");
    if (scope && cond && strcmp(scope, "partial") == 0 && strcmp(cond, "none") == 0)
        verrors_add(errs, "/condition", "a partial adequacy decision names the condition a recipient must meet");
    const char *adopted = json_get_str(after, "adopted_on"), *until = json_get_str(after, "valid_until");
    if (adopted && until && strcmp(until, adopted) < 0) verrors_add(errs, "/valid_until", "must not be before adopted_on");
    const char *from = json_get_str(after, "in_force_from");
    if (adopted && from && strcmp(from, adopted) < 0) verrors_add(errs, "/in_force_from", "must not be before adopted_on");
    if (from && until && strcmp(until, from) < 0) verrors_add(errs, "/valid_until", "must not be before in_force_from");
    if (errs->count) r->status = 400;
}

const resource RES_ADEQUACY = {
    .type = "adequacy_decision",
    .collection = COLL_ADEQUACY,
    .path = "/v1/reference/adequacy-decisions",
    .item_path = "/v1/reference/adequacy-decisions/{id}",
    .client_ids = true,
    .fields = ADEQUACY_FIELDS,
    .filters = ADEQUACY_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    .check = adequacy_check,
    .events = EVENTS_CHANGES,
};

static const char *const SCC_KINDS[] = {"transfer_tool", "art28_clauses", NULL};
static const char *const SCC_STATUSES[] = {"current", "repealed", NULL};
static const char *const SCC_BASES[] = {"scc_2021", "scc_2001", "scc_2004", "scc_2010", "uk_idta", "uk_addendum",
                                        "ch_scc", NULL};
static const field MODULE = {.type = FT_INT, .min = 1, .max = 4};

static const field SCC_FIELDS[] = {
    CLIENT_ID_FIELDS,
    {.name = "name", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 300},
    {.name = "legal_act", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "regime", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = REGIMES},
    {.name = "kind", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = SCC_KINDS},
    {.name = "basis", .type = FT_ENUM, .enums = SCC_BASES},
    {.name = "modules", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 4, .item = &MODULE},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = SCC_STATUSES},
    {.name = "in_force_from", .type = FT_DATE},
    {.name = "new_contracts_until", .type = FT_DATE},
    {.name = "valid_until", .type = FT_DATE},
    {.name = "note", .type = FT_LOCALIZED, .max = 2000},
    {.name = "source_url", .type = FT_URL},
    {0},
};

static const filter_def SCC_FILTERS[] = {
    {"regime", "regime", &(const field){.type = FT_ENUM, .enums = REGIMES}, NULL},
    {"status", "status", &(const field){.type = FT_ENUM, .enums = SCC_STATUSES}, NULL},
    {"basis", "basis", &(const field){.type = FT_ENUM, .enums = SCC_BASES}, NULL},
    {0},
};

const resource RES_SCC_SET = {
    .type = "scc_set",
    .collection = COLL_SCC_SETS,
    .path = "/v1/reference/scc-sets",
    .item_path = "/v1/reference/scc-sets/{id}",
    .client_ids = true,
    .fields = SCC_FIELDS,
    .filters = SCC_FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_ADMIN,
    .delete_role = ROLE_ADMIN,
    .check = NULL,
    .events = EVENTS_CHANGES,
};
