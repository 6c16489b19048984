/* The subprocessor resource (GDPR Art. 28(2)/(4)): one legal entity this
 * processor engages, with where it processes data and what the public list shows. */
#include <stdio.h>
#include <string.h>

#include "subreg/collections.h"
#include "subreg/fields.h"
#include "subreg/json.h"
#include "subreg/resource.h"

static const char *const CATEGORIES[] = {"hosting", "monitoring", "rmm", "erp_billing", "email",
                                         "newsletter", "payment", "subcontractor", "other", NULL};
static const char *const ROLES[] = {"processor", "subprocessor", NULL};
static const char *const STATUSES[] = {"proposed", "active", "retired", NULL};
static const char *const DATA_CATEGORIES[] = {"master_contact", "contract_service", "support_communication",
                                              "erp_billing", "it_documentation", NULL};
static const char *const DATA_SUBJECTS[] = {"prospects", "customers", "service_providers", "partners", NULL};
static const char *const LOCATION_ROLES[] = {"hosting", "processing", "remote_access", "backup", "support", NULL};

static bool is_vat_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 4 || n > 15 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z') return false;
    for (size_t i = 2; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '+' ||
              c == '*' || c == '.'))
            return false;
    }
    return true;
}

static bool is_lei(const char *s)
{
    if (strlen(s) != 20) return false;
    for (int i = 0; i < 20; i++) {
        char c = s[i];
        bool digit = c >= '0' && c <= '9';
        if (i >= 18 ? !digit : !(digit || (c >= 'A' && c <= 'Z'))) return false;
    }
    /* ISO 17442 check digits: ISO 7064 MOD 97-10 over the letters-as-numbers. */
    int rem = 0;
    for (int i = 0; i < 20; i++) {
        int v = s[i] >= 'A' ? s[i] - 'A' + 10 : s[i] - '0';
        rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
    }
    return rem == 1;
}

static bool is_phone(const char *s)
{
    size_t n = strlen(s), digits = 0;
    if (n < 3 || n > 40) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') digits++;
        else if (!(c == ' ' || c == '(' || c == ')' || c == '.' || c == '/' || c == '-' || (c == '+' && i == 0)))
            return false;
    }
    return digits >= 3;
}

static const field IDENTIFIERS[] = {
    {.name = "vat_id", .type = FT_STRING, .min = 4, .max = 15, .check = is_vat_id,
     .check_msg = "must be a VAT number: two-letter country prefix and 2 to 13 characters"},
    {.name = "lei", .type = FT_STRING, .min = 20, .max = 20, .check = is_lei,
     .check_msg = "must be a 20-character ISO 17442 LEI with valid check digits"},
    {.name = "register_number", .type = FT_STRING, .min = 1, .max = 100},
    {0},
};

static const field CONTACT[] = {
    {.name = "name", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "email", .type = FT_EMAIL},
    {.name = "phone", .type = FT_STRING, .min = 3, .max = 40, .check = is_phone,
     .check_msg = "must be a phone number: digits, spaces and + ( ) . / -"},
    {0},
};

static const field LOCATION[] = {
    {.name = "country", .type = FT_COUNTRY, .flags = FF_REQUIRED},
    {.name = "region", .type = FT_STRING, .min = 1, .max = 100},
    {.name = "role", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = LOCATION_ROLES},
    {0},
};

static const field CERTIFICATION[] = {
    {.name = "name", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 100},
    {.name = "issuer", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "valid_until", .type = FT_DATE},
    {0},
};

/* The parts of the Data Privacy Framework a listing covers: the EU-US DPF, its
 * UK Extension (the UK-US data bridge) and the Swiss-US DPF — each regime's
 * adequacy for the US counts only for the part that regime recognises. */
static const char *const DPF_FRAMEWORKS[] = {"eu-us", "uk-extension", "swiss-us", NULL};
static const field DPF_FRAMEWORK = {.type = FT_ENUM, .enums = DPF_FRAMEWORKS};

static const field DPF[] = {
    {.name = "participating", .type = FT_BOOL, .flags = FF_REQUIRED},
    {.name = "frameworks", .type = FT_ARRAY, .flags = FF_UNIQUE, .max = 3, .item = &DPF_FRAMEWORK},
    {.name = "verified_on", .type = FT_DATE},
    {0},
};

static const field PUBLIC_VIEW[] = {
    {.name = "listed", .type = FT_BOOL, .flags = FF_REQUIRED, .def = "true"},
    {.name = "description", .type = FT_LOCALIZED, .max = 2000},
    {0},
};

static const field DATA_CATEGORY = {.type = FT_ENUM, .enums = DATA_CATEGORIES};
static const field DATA_SUBJECT = {.type = FT_ENUM, .enums = DATA_SUBJECTS};
static const field LOCATION_ITEM = {.type = FT_OBJECT, .fields = LOCATION};
static const field CERT_ITEM = {.type = FT_OBJECT, .fields = CERTIFICATION};

static const field FIELDS[] = {
    {.name = "id", .type = FT_STRING, .flags = FF_READONLY},
    {.name = "version", .type = FT_INT, .flags = FF_READONLY},
    {.name = "created_at", .type = FT_DATETIME, .flags = FF_READONLY},
    {.name = "updated_at", .type = FT_DATETIME, .flags = FF_READONLY},
    {.name = "legal_name", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1, .max = 200},
    {.name = "trading_name", .type = FT_STRING, .min = 1, .max = 200},
    {.name = "identifiers", .type = FT_OBJECT, .fields = IDENTIFIERS},
    {.name = "hq_country", .type = FT_COUNTRY, .flags = FF_REQUIRED},
    {.name = "website", .type = FT_URL},
    {.name = "privacy_policy_url", .type = FT_URL},
    {.name = "dpa_url", .type = FT_URL},
    {.name = "subprocessor_list_url", .type = FT_URL},
    {.name = "privacy_contact", .type = FT_OBJECT, .fields = CONTACT},
    {.name = "category", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = CATEGORIES},
    {.name = "role", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = ROLES, .def = "\"subprocessor\""},
    {.name = "status", .type = FT_ENUM, .flags = FF_REQUIRED, .enums = STATUSES, .def = "\"proposed\""},
    {.name = "purpose", .type = FT_LOCALIZED, .flags = FF_REQUIRED, .max = 2000},
    {.name = "data_categories", .type = FT_ARRAY, .flags = FF_REQUIRED | FF_UNIQUE, .min = 1, .max = 5,
     .item = &DATA_CATEGORY},
    {.name = "data_subjects", .type = FT_ARRAY, .flags = FF_REQUIRED | FF_UNIQUE, .min = 1, .max = 4,
     .item = &DATA_SUBJECT},
    {.name = "locations", .type = FT_ARRAY, .flags = FF_REQUIRED | FF_UNIQUE, .min = 1, .max = 50,
     .item = &LOCATION_ITEM},
    {.name = "certifications", .type = FT_ARRAY, .flags = FF_UNIQUE, .min = 0, .max = 50, .item = &CERT_ITEM},
    {.name = "dpf", .type = FT_OBJECT, .fields = DPF},
    {.name = "last_review_on", .type = FT_DATE},
    {.name = "next_review_on", .type = FT_DATE},
    {.name = "public", .type = FT_OBJECT, .flags = FF_REQUIRED, .fields = PUBLIC_VIEW, .def = "{}"},
    SERVICES_FIELD,
    {.name = "notes", .type = FT_STRING, .min = 0, .max = 10000},
    {0},
};

static const field F_STATUS = {.type = FT_ENUM, .enums = STATUSES};
static const field F_CATEGORY = {.type = FT_ENUM, .enums = CATEGORIES};
static const field F_ROLE = {.type = FT_ENUM, .enums = ROLES};
static const field F_COUNTRY = {.type = FT_COUNTRY};

static const filter_def FILTERS[] = {
    {"status", "status", &F_STATUS, NULL},
    {"category", "category", &F_CATEGORY, NULL},
    {"role", "role", &F_ROLE, NULL},
    {"country", "locations.country", &F_COUNTRY, NULL},
    {"hq_country", "hq_country", &F_COUNTRY, NULL},
    {0},
};

static bool has_framework(const cJSON *frameworks, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, frameworks) if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0) return true;
    return false;
}

static void check(const cJSON *before, const cJSON *after, verrors *errs, rule_result *r)
{
    (void)before;
    const char *last = json_get_str(after, "last_review_on");
    const char *next = json_get_str(after, "next_review_on");
    if (last && next && strcmp(next, last) < 0) verrors_add(errs, "/next_review_on", "must not be before last_review_on");
    const cJSON *dpf = json_get(after, "dpf");
    const cJSON *frameworks = dpf ? json_get(dpf, "frameworks") : NULL;
    if (cJSON_GetArraySize(frameworks) > 0 && !cJSON_IsTrue(json_get(dpf, "participating")))
        verrors_add(errs, "/dpf/frameworks", "only for a participant (participating true)");
    /* the UK Extension is joined on top of an EU-US listing, never alone */
    if (has_framework(frameworks, "uk-extension") && !has_framework(frameworks, "eu-us"))
        verrors_add(errs, "/dpf/frameworks", "the UK Extension requires the EU-US DPF (eu-us)");
    if (errs->count) r->status = 400;
}

/* proposed → active → retired; a proposal can be withdrawn (proposed → retired),
 * and a retired subprocessor can be proposed again. Anything else skips the
 * notice the customers are owed (Art. 28(2)). */
static const char *const TRANSITIONS[][2] = {
    {"proposed", "active"}, {"proposed", "retired"}, {"active", "retired"}, {"retired", "proposed"}, {NULL, NULL}};
static const char *const INITIAL[] = {"proposed", "active", NULL};

/* The only members the public list shows (plus certifications' name, issuer and
 * validity, DPF participation and public.description, derived in public_view):
 * never contacts, notes, identifiers, review dates or contract terms. */
static const char *const PUBLIC_FIELDS[] = {"id",       "legal_name",       "trading_name",   "hq_country",
                                            "website",  "privacy_policy_url", "dpa_url",      "subprocessor_list_url",
                                            "category", "role",             "purpose",        "data_categories",
                                            "data_subjects", "locations",   NULL};

const resource RES_SUBPROCESSOR = {
    .type = "subprocessor",
    .collection = COLL_SUBPROCESSORS,
    .path = "/v1/subprocessors",
    .item_path = "/v1/subprocessors/{id}",
    .id_prefix = "sp_",
    .fields = FIELDS,
    .filters = FILTERS,
    .read_role = ROLE_READER,
    .write_role = ROLE_EDITOR,
    .delete_role = ROLE_ADMIN,
    .check = check,
    .transitions = TRANSITIONS,
    .initial_statuses = INITIAL,
    .public_fields = PUBLIC_FIELDS,
    .events = EVENTS_CHANGES,
};

