/* schema: one descriptor table per resource drives validation, defaults, merge
 * patch and the read-only/internal split for every resource — instead of a
 * hand-written validator per resource. Pure functions over cJSON; no I/O. */
#ifndef SUBREG_SCHEMA_H
#define SUBREG_SCHEMA_H

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef enum {
    FT_STRING,    /* UTF-8 string, min..max characters (code points) */
    FT_ENUM,      /* one of enums[] */
    FT_BOOL,
    FT_INT,       /* integer min..max */
    FT_DATE,      /* YYYY-MM-DD, a real calendar date */
    FT_DATETIME,  /* RFC 3339 */
    FT_COUNTRY,   /* ISO 3166-1 alpha-2, upper case, assigned */
    FT_URL,       /* absolute http(s) URL */
    FT_EMAIL,     /* addr-spec (dot-atom local part) */
    FT_LOCALIZED, /* {"de": string, "en": string}, both required, 1..max */
    FT_OBJECT,    /* fields[] */
    FT_ARRAY,     /* item, min..max entries */
    FT_REF,       /* id of a document in collection ref; existence checked by api/crud.c */
} field_type;

enum {
    FF_REQUIRED = 1 << 0, /* must be present on create (and stay present) */
    FF_READONLY = 1 << 1, /* set by the server; refused in request bodies */
    FF_UNIQUE = 1 << 2,   /* arrays: entries must be distinct */
    FF_IMMUTABLE = 1 << 3, /* set on create, refused in a merge patch (client-chosen ids) */
    FF_WEAK = 1 << 4,      /* FT_REF that does not keep its target from being deleted (logs) */
};

typedef struct field {
    const char *name;
    field_type type;
    unsigned flags;
    int min, max;
    const char *const *enums;      /* FT_ENUM: NULL-terminated */
    bool (*check)(const char *s);  /* FT_STRING: extra syntax check */
    const char *check_msg;         /* message when check fails */
    const struct field *fields;    /* FT_OBJECT: terminated by {0} */
    const struct field *item;      /* FT_ARRAY: descriptor of one entry */
    const char *def;               /* JSON literal applied on create when absent */
    const char *ref;               /* FT_REF: the collection the id points into */
} field;

/* Validation errors: a cJSON array of {"pointer", "message"}; at most 50 kept. */
typedef struct {
    cJSON *list;
    int count;
} verrors;

void verrors_init(verrors *e);
void verrors_add(verrors *e, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void verrors_free(verrors *e);

/* Validates a client document (a create body, or the result of a merge patch)
 * against fields. Read-only fields are refused; unknown fields are refused. */
bool schema_validate(const field *fields, const cJSON *doc, verrors *errs);

/* Refuses read-only and unknown top-level members of a merge patch; nested members
 * are checked when the merged result is validated. */
bool schema_check_patch(const field *fields, const cJSON *patch, verrors *errs);

/* Adds the defaults of absent fields (recursively into present objects); leaves
 * a doc that is not an object alone. */
void schema_apply_defaults(const field *fields, cJSON *doc);

/* RFC 7396 JSON merge patch: modifies target in place. */
void merge_patch(cJSON *target, const cJSON *patch);

/* Removes read-only members and members starting with '_' (internal) from a
 * stored document, leaving the part a client may send back. */
void schema_strip_server_fields(const field *fields, cJSON *doc);

/* Validates one value (e.g. a query parameter) against a field descriptor; the
 * value arrives as a string and is converted per type. Returns a cJSON value to
 * filter on, or NULL with a message. */
cJSON *schema_parse_scalar(const field *f, const char *text, char *msg, size_t msglen);

/* Syntax checks shared with other modules. */
bool is_country_code(const char *s);
bool is_http_url(const char *s);
bool is_email(const char *s);
bool is_id(const char *s); /* [A-Za-z0-9_-]{1,64}: every id, ours or client-chosen */

/* Escapes a key into a JSON pointer segment (~0, ~1). */
void pointer_append(char *ptr, size_t cap, const char *seg);

#endif
