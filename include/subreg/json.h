/* json: strict JSON input and the JSON <-> BSON mapping.
 *
 * cJSON alone accepts trailing data, invalid UTF-8, duplicate keys, "\u0000"
 * (which silently truncates strings) and nesting deep enough to overflow a
 * thread's stack; json_parse_strict refuses all of them, so nothing the service
 * stores was ever ambiguous on the wire, and no input can crash it. */
#ifndef SUBREG_JSON_H
#define SUBREG_JSON_H

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "subreg/util.h"

/* Deepest nesting of arrays and objects accepted (the API's bodies need ~5). */
#define JSON_MAX_DEPTH 64
#define JSON_MAX_DEPTH_S "64"

/* Parses exactly one JSON value filling buf[0..len). On failure returns NULL and
 * writes a short human-readable reason into err. */
cJSON *json_parse_strict(const char *buf, size_t len, char *err, size_t errlen);

/* Appends a cJSON object's members to a BSON document. Refuses (returns false)
 * keys that start with '$' or contain '.', which must never reach MongoDB. */
bool json_to_bson(const cJSON *obj, bson_t *out);
/* Converts a BSON document to a cJSON object. Dates become RFC 3339 strings. */
cJSON *bson_to_json(const bson_t *doc);
cJSON *bson_iter_to_json(bson_iter_t *iter);
/* A stored document in API shape: "_id" becomes "id" (first), the rest in
 * order, internal '_' members kept (callers strip them: doc_public). */
cJSON *bson_to_api_json(const bson_t *doc);
/* A stored document as the API shows it, straight into text (what bson_to_json,
 * "_id" renamed "id", the top-level '_' members dropped and json_dump give,
 * without the tree): for pages of many documents. */
void bson_write_api_json(const bson_t *doc, strbuf *out);

/* Case-sensitive member lookup (cJSON_GetObjectItem is case-insensitive). */
cJSON *json_get(const cJSON *obj, const char *key);
const char *json_get_str(const cJSON *obj, const char *key);
/* Whether the array arr holds the string s. */
bool json_array_has_string(const cJSON *arr, const char *s);

/* The first element of an array whose "id" member equals id (NULL: none, or id
 * NULL). A linear scan: for arrays a request or a round already holds. */
cJSON *json_find_by_id(const cJSON *arr, const char *id);

/* An index of an array's elements by one string member, for lookups in loops over
 * other arrays (O(log n) instead of json_find_by_id's scan). Elements without that
 * member are left out; elements with equal keys stay in array order. The array
 * must outlive the index and not change while it is used. */
typedef struct {
    const char *key;
    const cJSON *item;
    size_t pos;
} json_index_entry;
typedef struct {
    json_index_entry *v;
    size_t n;
} json_index;
void json_index_build(json_index *ix, const cJSON *arr, const char *member);
/* The first element with that key (NULL: none, or key NULL). */
const cJSON *json_index_find(const json_index *ix, const char *key);
/* The number of elements with that key; *first points at the first of them. */
size_t json_index_range(const json_index *ix, const char *key, const json_index_entry **first);
void json_index_free(json_index *ix);

/* Compact serialisation; the caller frees. */
char *json_dump(const cJSON *v);
/* Replaces, in every string and key of v, what text_valid refuses by U+FFFD
 * (util.h): the public forms carry any stored string safely. */
void json_clean_text(cJSON *v);

#endif
