#include "subreg/schema.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subreg/json.h"
#include "subreg/util.h"

#define MAX_ERRORS 50
#define PTR_MAX 512

void verrors_init(verrors *e)
{
    e->list = cJSON_CreateArray();
    e->count = 0;
}

void verrors_add(verrors *e, const char *pointer, const char *fmt, ...)
{
    e->count++;
    if (e->count > MAX_ERRORS) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "pointer", pointer);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddItemToArray(e->list, o);
}

void verrors_free(verrors *e)
{
    cJSON_Delete(e->list);
    e->list = NULL;
}

void pointer_append(char *ptr, size_t cap, const char *seg)
{
    size_t n = strlen(ptr);
    if (n + 1 < cap) ptr[n++] = '/';
    /* Whole characters (or escapes) only: a pointer cut short at cap stays
     * valid UTF-8, as the 400 response that carries it must be. */
    for (const char *p = seg; *p;) {
        size_t len = 1;
        if (*p != '~' && *p != '/')
            while (((unsigned char)p[len] & 0xC0) == 0x80) len++;
        if (n + (*p == '~' || *p == '/' ? 2 : len) >= cap) break;
        if (*p == '~' || *p == '/') {
            ptr[n++] = '~';
            ptr[n++] = *p == '~' ? '0' : '1';
        } else {
            memcpy(ptr + n, p, len);
            n += len;
        }
        p += len;
    }
    ptr[n < cap ? n : cap - 1] = '\0';
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static bool has_control(const char *s, bool allow_newlines)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) return true;
        if (c == 0x7f) return true;
    }
    return false;
}

/* ISO 3166-1 alpha-2, officially assigned codes (249). */
static const char COUNTRIES[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

bool is_country_code(const char *s)
{
    if (strlen(s) != 2 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1])) return false;
    for (const char *p = COUNTRIES; *p; p += 3) {
        if (p[0] == s[0] && p[1] == s[1]) return true;
        if (!p[2]) break;
    }
    return false;
}

bool is_http_url(const char *s)
{
    const char *p;
    if (str_istarts(s, "https://")) p = s + 8;
    else if (str_istarts(s, "http://")) p = s + 7;
    else return false;
    size_t len = strlen(s);
    if (len > 2000) return false;
    for (const char *q = s; *q; q++) {
        unsigned char c = (unsigned char)*q;
        /* ASCII only (RFC 3986 "uri"): hosts as punycode, the rest percent-encoded */
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' ||
            c == '`' || c == '{' || c == '|' || c == '}')
            return false;
    }
    /* host: up to the first '/', '?', '#'; no userinfo. */
    size_t hlen = strcspn(p, "/?#");
    if (hlen == 0 || memchr(p, '@', hlen)) return false;
    const char *host = p;
    size_t namelen = hlen;
    if (host[0] == '[') {
        /* an IPv6 literal (RFC 3986 IP-literal; no zone): "[]" or "[name]" is no host */
        const char *close = memchr(host, ']', hlen);
        if (!close) return false;
        namelen = (size_t)(close - host) + 1;
        char v6[INET6_ADDRSTRLEN];
        unsigned char addr[16];
        if (namelen - 2 >= sizeof v6) return false;
        memcpy(v6, host + 1, namelen - 2);
        v6[namelen - 2] = '\0';
        if (inet_pton(AF_INET6, v6, addr) != 1) return false;
    } else {
        const char *colon = memchr(host, ':', hlen);
        if (colon) namelen = (size_t)(colon - host);
        if (namelen == 0 || host[0] == '.' || host[0] == '-' || host[namelen - 1] == '-') return false;
        for (size_t i = 0; i < namelen; i++) {
            unsigned char c = (unsigned char)host[i];
            if (!(isalnum(c) || c == '-' || c == '.')) return false;
            if (c == '.' && i + 1 < namelen && host[i + 1] == '.') return false;
        }
    }
    if (namelen < hlen) {
        if (host[namelen] != ':') return false;
        size_t plen = hlen - namelen - 1;
        if (plen == 0 || plen > 5) return false;
        long port = 0;
        for (size_t i = namelen + 1; i < hlen; i++) {
            if (!isdigit((unsigned char)host[i])) return false;
            port = port * 10 + (host[i] - '0');
        }
        if (port < 1 || port > 65535) return false;
    }
    return true;
}

bool is_email(const char *s)
{
    const char *at = strrchr(s, '@');
    size_t len = strlen(s);
    if (!at || at == s || len > 254) return false;
    size_t local = (size_t)(at - s);
    if (local > 64 || s[0] == '.' || at[-1] == '.') return false;
    static const char atext[] = "!#$%&'*+-/=?^_`{|}~.";
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || strchr(atext, c) || c >= 0x80)) return false;
        if (c == '.' && s[i + 1] == '.') return false;
    }
    const char *d = at + 1;
    size_t dlen = strlen(d);
    if (dlen < 3 || !strchr(d, '.') || d[0] == '.' || d[dlen - 1] == '.') return false;
    size_t label = 0;
    for (size_t i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c >= 0x80)) return false;
        if (label == 0 && c == '-') return false;
        if (++label > 63) return false;
    }
    return true;
}

bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return false;
    return true;
}

static const char *type_name(field_type t)
{
    switch (t) {
    case FT_BOOL: return "a boolean";
    case FT_INT: return "an integer";
    case FT_OBJECT:
    case FT_LOCALIZED: return "an object";
    case FT_ARRAY: return "an array";
    default: return "a string";
    }
}

static bool validate_value(const field *f, const cJSON *v, char *ptr, verrors *errs);

static bool validate_object(const field *fields, const cJSON *obj, char *ptr, verrors *errs,
                            bool refuse_readonly)
{
    bool ok = true;
    size_t base = strlen(ptr);
    for (const cJSON *c = obj->child; c; c = c->next) {
        const field *f = fields;
        while (f->name && strcmp(f->name, c->string) != 0) f++;
        pointer_append(ptr, PTR_MAX, c->string);
        if (!f->name) {
            verrors_add(errs, ptr, "unknown field");
            ok = false;
        } else if ((f->flags & FF_READONLY) && refuse_readonly) {
            verrors_add(errs, ptr, "read-only field, set by the server");
            ok = false;
        } else if (!(f->flags & FF_READONLY)) {
            if (!validate_value(f, c, ptr, errs)) ok = false;
        }
        ptr[base] = '\0';
    }
    for (const field *f = fields; f->name; f++) {
        if ((f->flags & FF_REQUIRED) && !(f->flags & FF_READONLY) && !json_get(obj, f->name)) {
            pointer_append(ptr, PTR_MAX, f->name);
            verrors_add(errs, ptr, "required field is missing");
            ptr[base] = '\0';
            ok = false;
        }
    }
    return ok;
}

static bool validate_string(const field *f, const char *s, const char *ptr, verrors *errs)
{
    size_t n = utf8_chars(s);
    /* Every text may end up in XML (the Atom feed): only what XML 1.0 allows. */
    if (!text_valid(s, strlen(s))) {
        verrors_add(errs, ptr, "must not contain control characters, U+FFFE or U+FFFF (not allowed in XML 1.0)");
        return false;
    }
    switch (f->type) {
    case FT_STRING:
        if (n < (size_t)f->min || (f->max && n > (size_t)f->max)) {
            verrors_add(errs, ptr, "must be %d to %d characters long", f->min, f->max);
            return false;
        }
        if (has_control(s, f->max > 200)) {
            verrors_add(errs, ptr, "must not contain control characters");
            return false;
        }
        if (f->check && !f->check(s)) {
            verrors_add(errs, ptr, "%s", f->check_msg ? f->check_msg : "invalid format");
            return false;
        }
        return true;
    case FT_ENUM:
        for (const char *const *e = f->enums; *e; e++)
            if (strcmp(*e, s) == 0) return true;
        {
            strbuf sb = {0};
            for (const char *const *e = f->enums; *e; e++) {
                if (e != f->enums) sb_puts(&sb, ", ");
                sb_puts(&sb, *e);
            }
            verrors_add(errs, ptr, "must be one of: %s", sb.data);
            sb_free(&sb);
        }
        return false;
    case FT_DATE:
        if (!is_valid_date(s)) {
            verrors_add(errs, ptr, "must be a calendar date YYYY-MM-DD");
            return false;
        }
        return true;
    case FT_DATETIME: {
        int64_t ms;
        if (!parse_rfc3339(s, &ms)) {
            verrors_add(errs, ptr, "must be an RFC 3339 timestamp");
            return false;
        }
        return true;
    }
    case FT_COUNTRY:
        if (!is_country_code(s)) {
            verrors_add(errs, ptr, "must be an ISO 3166-1 alpha-2 country code in upper case");
            return false;
        }
        return true;
    case FT_URL:
        if (!is_http_url(s)) {
            verrors_add(errs, ptr, "must be an absolute http or https URL in ASCII: a host in punycode, other characters percent-encoded (at most 2000 characters)");
            return false;
        }
        return true;
    case FT_EMAIL:
        if (!is_email(s)) {
            verrors_add(errs, ptr, "must be an e-mail address");
            return false;
        }
        return true;
    case FT_REF:
        if (!is_id(s)) {
            verrors_add(errs, ptr, "must be an id: 1 to 64 letters, digits, '_' or '-'");
            return false;
        }
        return true;
    default: return false;
    }
}

static const field LOCALIZED_FIELDS[] = {
    {.name = "de", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1},
    {.name = "en", .type = FT_STRING, .flags = FF_REQUIRED, .min = 1},
    {0},
};

static bool validate_value(const field *f, const cJSON *v, char *ptr, verrors *errs)
{
    switch (f->type) {
    case FT_BOOL:
        if (!cJSON_IsBool(v)) goto wrong_type;
        return true;
    case FT_INT:
        /* integral: every finite double from 2^53 on is; below, the conversion is
         * defined (1e300 or 1e400 converted to long long would not be) */
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
            (fabs(v->valuedouble) < 9007199254740992.0 && v->valuedouble != (double)(long long)v->valuedouble))
            goto wrong_type;
        if (v->valuedouble < f->min || v->valuedouble > f->max) {
            verrors_add(errs, ptr, "must be between %d and %d", f->min, f->max);
            return false;
        }
        return true;
    case FT_LOCALIZED: {
        if (!cJSON_IsObject(v)) goto wrong_type;
        field loc[3];
        memcpy(loc, LOCALIZED_FIELDS, sizeof loc);
        loc[0].max = loc[1].max = f->max ? f->max : 2000;
        return validate_object(loc, v, ptr, errs, true);
    }
    case FT_OBJECT:
        if (!cJSON_IsObject(v)) goto wrong_type;
        return validate_object(f->fields, v, ptr, errs, true);
    case FT_ARRAY: {
        if (!cJSON_IsArray(v)) goto wrong_type;
        int n = cJSON_GetArraySize(v);
        if (n < f->min || n > f->max) {
            verrors_add(errs, ptr, "must have %d to %d entries", f->min, f->max);
            return false;
        }
        bool ok = true;
        size_t base = strlen(ptr);
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            char idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            pointer_append(ptr, PTR_MAX, idx);
            if (!validate_value(f->item, c, ptr, errs)) ok = false;
            if (ok && (f->flags & FF_UNIQUE)) {
                for (const cJSON *d = v->child; d != c; d = d->next) {
                    if (cJSON_Compare(c, d, 1)) {
                        verrors_add(errs, ptr, "duplicate entry");
                        ok = false;
                        break;
                    }
                }
            }
            ptr[base] = '\0';
        }
        return ok;
    }
    default:
        if (!cJSON_IsString(v)) goto wrong_type;
        return validate_string(f, v->valuestring, ptr, errs);
    }
wrong_type:
    verrors_add(errs, ptr, "must be %s", type_name(f->type));
    return false;
}

bool schema_validate(const field *fields, const cJSON *doc, verrors *errs)
{
    char ptr[PTR_MAX] = "";
    if (!cJSON_IsObject(doc)) {
        verrors_add(errs, "", "the body must be a JSON object");
        return false;
    }
    return validate_object(fields, doc, ptr, errs, true);
}

bool schema_check_patch(const field *fields, const cJSON *patch, verrors *errs)
{
    if (!cJSON_IsObject(patch)) {
        verrors_add(errs, "", "a merge patch must be a JSON object");
        return false;
    }
    bool ok = true;
    for (const cJSON *c = patch->child; c; c = c->next) {
        const field *f = fields;
        while (f->name && strcmp(f->name, c->string) != 0) f++;
        char ptr[PTR_MAX] = "";
        pointer_append(ptr, PTR_MAX, c->string);
        if (!f->name) {
            verrors_add(errs, ptr, "unknown field");
            ok = false;
        } else if (f->flags & FF_READONLY) {
            verrors_add(errs, ptr, "read-only field, set by the server");
            ok = false;
        } else if (f->flags & FF_IMMUTABLE) {
            verrors_add(errs, ptr, "cannot be changed after creation");
            ok = false;
        }
    }
    return ok;
}

void schema_apply_defaults(const field *fields, cJSON *doc)
{
    /* A body that is not an object is refused by schema_validate; cJSON would
     * append the defaults to an array or a string as if they were members. */
    if (!cJSON_IsObject(doc)) return;
    for (const field *f = fields; f->name; f++) {
        cJSON *v = json_get(doc, f->name);
        if (!v && f->def && (v = cJSON_Parse(f->def))) cJSON_AddItemToObject(doc, f->name, v);
        if (v && f->type == FT_OBJECT && cJSON_IsObject(v)) {
            schema_apply_defaults(f->fields, v);
        } else if (v && f->type == FT_ARRAY && f->item->type == FT_OBJECT) {
            for (cJSON *c = v->child; c; c = c->next)
                if (cJSON_IsObject(c)) schema_apply_defaults(f->item->fields, c);
        }
    }
}

void merge_patch(cJSON *target, const cJSON *patch)
{
    for (const cJSON *p = patch->child; p; p = p->next) {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
        } else if (cJSON_IsObject(p)) {
            cJSON *t = json_get(target, p->string);
            if (!cJSON_IsObject(t)) {
                cJSON *fresh = cJSON_CreateObject();
                if (t) cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, fresh);
                else cJSON_AddItemToObject(target, p->string, fresh);
                t = fresh;
            }
            merge_patch(t, p);
        } else {
            cJSON *copy = cJSON_Duplicate(p, 1);
            if (json_get(target, p->string)) cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, copy);
            else cJSON_AddItemToObject(target, p->string, copy);
        }
    }
}

void schema_strip_server_fields(const field *fields, cJSON *doc)
{
    cJSON *c = doc->child;
    while (c) {
        cJSON *next = c->next;
        const field *f = fields;
        while (f->name && strcmp(f->name, c->string) != 0) f++;
        if (c->string[0] == '_' || (f->name && (f->flags & FF_READONLY)))
            cJSON_Delete(cJSON_DetachItemViaPointer(doc, c));
        c = next;
    }
}

cJSON *schema_parse_scalar(const field *f, const char *text, char *msg, size_t msglen)
{
    verrors errs;
    verrors_init(&errs);
    cJSON *v = NULL;
    if (f->type == FT_BOOL) {
        if (strcmp(text, "true") == 0) v = cJSON_CreateTrue();
        else if (strcmp(text, "false") == 0) v = cJSON_CreateFalse();
        else snprintf(msg, msglen, "must be true or false");
    } else if (f->type == FT_INT) {
        char *end;
        long long n = strtoll(text, &end, 10);
        if (*text && !*end && n >= f->min && n <= f->max) v = cJSON_CreateNumber((double)n);
        else snprintf(msg, msglen, "must be an integer between %d and %d", f->min, f->max);
    } else {
        cJSON *s = cJSON_CreateString(text);
        char ptr[PTR_MAX] = "";
        if (validate_value(f, s, ptr, &errs)) {
            v = s;
        } else {
            cJSON_Delete(s);
            const char *m = json_get_str(cJSON_GetArrayItem(errs.list, 0), "message");
            snprintf(msg, msglen, "%s", m ? m : "invalid value");
        }
    }
    verrors_free(&errs);
    return v;
}
