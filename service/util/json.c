#include "subreg/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/util.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The JSON pointer (RFC 6901: "~" → "~0", "/" → "~1") of path[depth - 1],
 * where path[i] is a child of path[i - 1] and path[0] the root; "/" for the
 * root itself. Built only for an error message. */
static void pointer_of(const cJSON *const *path, int depth, strbuf *out)
{
    for (int i = 1; i < depth; i++) {
        sb_puts(out, "/");
        if (cJSON_IsArray(path[i - 1])) {
            int k = 0;
            for (const cJSON *c = path[i - 1]->child; c != path[i]; c = c->next) k++;
            sb_printf(out, "%d", k);
            continue;
        }
        for (const char *p = path[i]->string; *p; p++) {
            if (*p == '~') sb_puts(out, "~0");
            else if (*p == '/') sb_puts(out, "~1");
            else sb_append(out, p, 1);
        }
    }
    if (!out->len) sb_puts(out, "/");
}

/* Strings must be valid UTF-8 (cJSON decodes \u escapes, which may yield lone
 * surrogates); object keys must be unique. path[0..depth) leads to v (depth is
 * bounded by JSON_MAX_DEPTH, checked before cJSON parsed anything). */
static bool check_tree(const cJSON **path, int depth, char *err, size_t errlen)
{
    const cJSON *v = path[depth - 1];
    enum { FINE, BAD_STRING, BAD_KEY } problem = FINE;
    const char *dup = NULL;
    if (cJSON_IsString(v)) {
        if (!utf8_valid(v->valuestring, strlen(v->valuestring))) problem = BAD_STRING;
    } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next) n++;
        if (cJSON_IsObject(v) && n > 1) {
            const char **keys = xmalloc(n * sizeof *keys);
            size_t i = 0;
            for (const cJSON *c = v->child; c; c = c->next) keys[i++] = c->string;
            qsort(keys, n, sizeof *keys, cmp_str);
            for (i = 1; i < n && !dup; i++)
                if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
            free(keys);
        }
        for (const cJSON *c = v->child; c && !dup && !problem; c = c->next) {
            if (cJSON_IsObject(v) && !utf8_valid(c->string, strlen(c->string))) {
                problem = BAD_KEY;
            } else {
                path[depth] = c;
                if (!check_tree(path, depth + 1, err, errlen)) return false;
            }
        }
    }
    if (problem == FINE && !dup) return true;
    strbuf at = {0};
    if (dup) {
        for (const cJSON *c = v->child; c; c = c->next)
            if (strcmp(c->string, dup) == 0) path[depth] = c;
        pointer_of(path, depth + 1, &at);
        snprintf(err, errlen, "duplicate key \"%.64s\" at %.120s", dup, at.data);
    } else {
        pointer_of(path, depth, &at);
        if (problem == BAD_KEY) snprintf(err, errlen, "a key in %.120s is not valid UTF-8", at.data);
        else snprintf(err, errlen, "string at %.120s is not valid UTF-8", at.data);
    }
    sb_free(&at);
    return false;
}

/* Length of a number token by RFC 8259's grammar, 0 when malformed: cJSON
 * also accepts leading zeros, "1.", ".5", "+1" and hex. */
static size_t number_len(const char *s, size_t n)
{
    size_t i = 0;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
    if (i < n && s[i] == '-') i++;
    if (!DIGIT(i)) return 0;
    if (s[i] == '0') i++;
    else
        while (DIGIT(i)) i++;
    if (i < n && s[i] == '.') {
        i++;
        if (!DIGIT(i)) return 0;
        while (DIGIT(i)) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) return 0;
        while (DIGIT(i)) i++;
    }
#undef DIGIT
    /* The token must end here: a delimiter, whitespace or the end. */
    if (i < n && !strchr(",]} \t\r\n", s[i])) return 0;
    return i;
}

/* Checks what cJSON lets through: "\u0000" (which truncates a string without a
 * trace), numbers outside the JSON grammar, and nesting deeper than
 * JSON_MAX_DEPTH (cJSON recurses per level; at ~800 levels a worker thread's
 * stack overflows, before cJSON's own limit of 1000). */
static const char *lexically_strict(const char *buf, size_t len)
{
    bool in_str = false;
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (!in_str) {
            if (c == '"') {
                in_str = true;
            } else if (c == '[' || c == '{') {
                if (++depth > JSON_MAX_DEPTH) return "invalid JSON: nested deeper than " JSON_MAX_DEPTH_S " levels";
            } else if (c == ']' || c == '}') {
                depth--;
            } else if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) {
                size_t k = number_len(buf + i, len - i);
                if (k == 0) return "invalid JSON: a malformed number or \\u0000 in a string";
                i += k - 1;
            }
            continue;
        }
        if (c == '"') {
            in_str = false;
        } else if (c == '\\' && i + 1 < len) {
            if (buf[i + 1] == 'u' && i + 5 < len && memcmp(buf + i + 2, "0000", 4) == 0)
                return "invalid JSON: a malformed number or \\u0000 in a string";
            i++;
        }
    }
    return NULL;
}

cJSON *json_parse_strict(const char *buf, size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "the body is empty");
        return NULL;
    }
    if (!utf8_valid(buf, len)) {
        snprintf(err, errlen, "the body is not valid UTF-8");
        return NULL;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(err, errlen, "the body contains a NUL byte");
        return NULL;
    }
    const char *lexical = lexically_strict(buf, len);
    if (lexical) {
        snprintf(err, errlen, "%s", lexical);
        return NULL;
    }
    /* cJSON needs a terminated buffer to detect trailing data. */
    char *copy = xstrndup(buf, len);
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (!v) {
        size_t off = end && end >= copy ? (size_t)(end - copy) : 0;
        /* cJSON reports the error position through a global; the offset is only
         * advisory, so a racy value is harmless. */
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= copy && ep <= copy + len) off = (size_t)(ep - copy);
        snprintf(err, errlen, "invalid JSON near byte %zu", off);
        free(copy);
        return NULL;
    }
    free(copy);
    const cJSON *path[JSON_MAX_DEPTH + 2] = {v};
    if (!check_tree(path, 1, err, errlen)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static bool append_value(bson_t *out, const char *key, const cJSON *v);

static bool append_members(const cJSON *obj, bson_t *out, bool is_array)
{
    int idx = 0;
    for (const cJSON *c = obj->child; c; c = c->next, idx++) {
        char numkey[16];
        const char *key;
        if (is_array) {
            snprintf(numkey, sizeof numkey, "%d", idx);
            key = numkey;
        } else {
            key = c->string;
            if (key[0] == '$' || strchr(key, '.')) return false;
        }
        if (!append_value(out, key, c)) return false;
    }
    return true;
}

static bool append_value(bson_t *out, const char *key, const cJSON *v)
{
    if (cJSON_IsString(v)) return BSON_APPEND_UTF8(out, key, v->valuestring);
    if (cJSON_IsBool(v)) return BSON_APPEND_BOOL(out, key, cJSON_IsTrue(v));
    if (cJSON_IsNull(v)) return BSON_APPEND_NULL(out, key);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* the range first: converting a double outside int64's range is undefined */
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d)
            return BSON_APPEND_INT64(out, key, (int64_t)d);
        return BSON_APPEND_DOUBLE(out, key, d);
    }
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bson_t child;
        bool arr = cJSON_IsArray(v);
        if (arr) BSON_APPEND_ARRAY_BEGIN(out, key, &child);
        else BSON_APPEND_DOCUMENT_BEGIN(out, key, &child);
        bool ok = append_members(v, &child, arr);
        if (arr) bson_append_array_end(out, &child);
        else bson_append_document_end(out, &child);
        return ok;
    }
    return false;
}

bool json_to_bson(const cJSON *obj, bson_t *out)
{
    if (!cJSON_IsObject(obj)) return false;
    return append_members(obj, out, false);
}

static cJSON *iter_value(const bson_iter_t *it);

static cJSON *container_to_json(const bson_iter_t *it, bool arr)
{
    bson_iter_t child;
    cJSON *o = arr ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!bson_iter_recurse(it, &child)) return o;
    while (bson_iter_next(&child)) {
        cJSON *v = iter_value(&child);
        if (!v) continue;
        if (arr) cJSON_AddItemToArray(o, v);
        else cJSON_AddItemToObject(o, bson_iter_key(&child), v);
    }
    return o;
}

static cJSON *iter_value(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        char *tmp = xstrndup(s, len);
        cJSON *v = cJSON_CreateString(tmp);
        free(tmp);
        return v;
    }
    case BSON_TYPE_INT32: return cJSON_CreateNumber(bson_iter_int32(it));
    case BSON_TYPE_INT64: return cJSON_CreateNumber((double)bson_iter_int64(it));
    case BSON_TYPE_DOUBLE: return cJSON_CreateNumber(bson_iter_double(it));
    case BSON_TYPE_BOOL: return cJSON_CreateBool(bson_iter_bool(it));
    case BSON_TYPE_NULL: return cJSON_CreateNull();
    case BSON_TYPE_DATE_TIME: {
        char ts[32];
        format_rfc3339(bson_iter_date_time(it), ts);
        return cJSON_CreateString(ts);
    }
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        return cJSON_CreateString(hex);
    }
    case BSON_TYPE_DOCUMENT: return container_to_json(it, false);
    case BSON_TYPE_ARRAY: return container_to_json(it, true);
    default: return NULL;
    }
}

cJSON *bson_iter_to_json(bson_iter_t *iter)
{
    return iter_value(iter);
}

cJSON *bson_to_api_json(const bson_t *doc)
{
    cJSON *o = cJSON_CreateObject();
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id")) {
        cJSON *v = iter_value(&it);
        if (v) cJSON_AddItemToObject(o, "id", v);
    }
    if (!bson_iter_init(&it, doc)) return o;
    while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), "_id") == 0) continue;
        cJSON *v = iter_value(&it);
        if (v) cJSON_AddItemToObject(o, bson_iter_key(&it), v);
    }
    return o;
}

/* ---- BSON straight to JSON text, as cJSON_PrintUnformatted writes it ---- */

static void write_string(const char *s, size_t len, strbuf *out)
{
    sb_reserve(out, len + 2);
    sb_append(out, "\"", 1);
    size_t run = 0; /* bytes copied as they are */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c != '"' && c != '\\') continue;
        sb_append(out, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': sb_append(out, "\\\"", 2); break;
        case '\\': sb_append(out, "\\\\", 2); break;
        case '\b': sb_append(out, "\\b", 2); break;
        case '\f': sb_append(out, "\\f", 2); break;
        case '\n': sb_append(out, "\\n", 2); break;
        case '\r': sb_append(out, "\\r", 2); break;
        case '\t': sb_append(out, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_append(out, esc, 6);
        }
    }
    sb_append(out, s + run, len - run);
    sb_append(out, "\"", 1);
}

static void write_number(double d, strbuf *out)
{
    char buf[32];
    if (d != d || d - d != 0) { /* NaN, infinities: cJSON prints null */
        sb_puts(out, "null");
        return;
    }
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d) {
        snprintf(buf, sizeof buf, "%lld", (long long)d);
    } else {
        snprintf(buf, sizeof buf, "%1.15g", d);
        if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%1.17g", d);
    }
    sb_puts(out, buf);
}

static void write_value(bson_iter_t *it, strbuf *out);

/* The types bson_to_json converts (iter_value); it leaves the others out. */
static bool shown(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_UTF8:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_BOOL:
    case BSON_TYPE_NULL:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_OID:
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: return true;
    default: return false;
    }
}

static void write_container(bson_iter_t *it, bool arr, strbuf *out)
{
    bson_iter_t child;
    sb_append(out, arr ? "[" : "{", 1);
    bool first = true;
    if (bson_iter_recurse(it, &child)) {
        while (bson_iter_next(&child)) {
            bson_type_t t = bson_iter_type(&child);
            if (!shown(t)) continue; /* as bson_to_json: other types are left out */
            if (!first) sb_append(out, ",", 1);
            first = false;
            if (!arr) {
                const char *k = bson_iter_key(&child);
                write_string(k, strlen(k), out);
                sb_append(out, ":", 1);
            }
            write_value(&child, out);
        }
    }
    sb_append(out, arr ? "]" : "}", 1);
}

static void write_value(bson_iter_t *it, strbuf *out)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        write_string(s, strnlen(s, len), out); /* as cJSON: up to a NUL */
        break;
    }
    case BSON_TYPE_INT32: write_number(bson_iter_int32(it), out); break;
    case BSON_TYPE_INT64: write_number((double)bson_iter_int64(it), out); break;
    case BSON_TYPE_DOUBLE: write_number(bson_iter_double(it), out); break;
    case BSON_TYPE_BOOL: sb_puts(out, bson_iter_bool(it) ? "true" : "false"); break;
    case BSON_TYPE_DATE_TIME: {
        char ts[32];
        format_rfc3339(bson_iter_date_time(it), ts);
        write_string(ts, strlen(ts), out);
        break;
    }
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        write_string(hex, strlen(hex), out);
        break;
    }
    case BSON_TYPE_DOCUMENT: write_container(it, false, out); break;
    case BSON_TYPE_ARRAY: write_container(it, true, out); break;
    default: sb_puts(out, "null"); break; /* BSON_TYPE_NULL (others are skipped by the caller) */
    }
}

void bson_write_api_json(const bson_t *doc, strbuf *out)
{
    bson_iter_t it;
    sb_append(out, "{", 1);
    bool first = true;
    if (bson_iter_init_find(&it, doc, "_id")) {
        sb_puts(out, "\"id\":");
        write_value(&it, out);
        first = false;
    }
    if (bson_iter_init(&it, doc)) {
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            bson_type_t t = bson_iter_type(&it);
            if (k[0] == '_') continue; /* "_id" written first; internal members never leave */
            if (!shown(t)) continue;
            if (!first) sb_append(out, ",", 1);
            first = false;
            write_string(k, strlen(k), out);
            sb_append(out, ":", 1);
            write_value(&it, out);
        }
    }
    sb_append(out, "}", 1);
}

cJSON *bson_to_json(const bson_t *doc)
{
    bson_iter_t it;
    cJSON *o = cJSON_CreateObject();
    if (!bson_iter_init(&it, doc)) return o;
    while (bson_iter_next(&it)) {
        cJSON *v = iter_value(&it);
        if (v) cJSON_AddItemToObject(o, bson_iter_key(&it), v);
    }
    return o;
}

cJSON *json_get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *json_get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = json_get(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *json_dump(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s) abort();
    return s;
}

static int cmp_index_entry(const void *a, const void *b)
{
    const json_index_entry *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->pos > y->pos) - (x->pos < y->pos);
}

void json_index_build(json_index *ix, const cJSON *arr, const char *member)
{
    size_t n = 0;
    for (const cJSON *c = arr ? arr->child : NULL; c; c = c->next) n++;
    ix->v = n ? xmalloc(n * sizeof *ix->v) : NULL;
    ix->n = 0;
    size_t pos = 0;
    for (const cJSON *c = arr ? arr->child : NULL; c; c = c->next, pos++) {
        const char *k = json_get_str(c, member);
        if (k) ix->v[ix->n++] = (json_index_entry){.key = k, .item = c, .pos = pos};
    }
    if (ix->n > 1) qsort(ix->v, ix->n, sizeof *ix->v, cmp_index_entry);
}

size_t json_index_range(const json_index *ix, const char *key, const json_index_entry **first)
{
    *first = NULL;
    if (!key || !ix->n) return 0;
    size_t lo = 0, hi = ix->n; /* the first entry whose key is >= key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->v[mid].key, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    size_t end = lo;
    while (end < ix->n && strcmp(ix->v[end].key, key) == 0) end++;
    if (end > lo) *first = &ix->v[lo];
    return end - lo;
}

const cJSON *json_index_find(const json_index *ix, const char *key)
{
    const json_index_entry *e;
    return json_index_range(ix, key, &e) ? e->item : NULL;
}

void json_index_free(json_index *ix)
{
    free(ix->v);
    ix->v = NULL;
    ix->n = 0;
}

cJSON *json_find_by_id(const cJSON *arr, const char *id)
{
    if (!id) return NULL;
    for (cJSON *c = arr ? arr->child : NULL; c; c = c->next) {
        const char *cid = json_get_str(c, "id");
        if (cid && strcmp(cid, id) == 0) return c;
    }
    return NULL;
}

static char *clean_copy(const char *s)
{
    strbuf sb = {0};
    sb_put_text(&sb, s, strlen(s));
    sb_append(&sb, "", 0);
    return sb.data ? sb.data : xstrdup("");
}

void json_clean_text(cJSON *v)
{
    if (!v) return;
    if (v->string && !text_valid(v->string, strlen(v->string))) {
        char *k = clean_copy(v->string);
        if (!(v->type & cJSON_StringIsConst)) cJSON_free(v->string);
        v->type &= ~cJSON_StringIsConst;
        v->string = k;
    }
    if (cJSON_IsString(v) && v->valuestring && !text_valid(v->valuestring, strlen(v->valuestring))) {
        char *s = clean_copy(v->valuestring);
        cJSON_free(v->valuestring);
        v->valuestring = s;
    }
    for (cJSON *c = v->child; c; c = c->next) json_clean_text(c);
}

bool json_array_has_string(const cJSON *arr, const char *s)
{
    for (const cJSON *e = cJSON_IsArray(arr) && s ? arr->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0) return true;
    return false;
}
