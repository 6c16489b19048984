/* RFC 7396 merge patch (domain/schema.c merge_patch) and the PATCH path around
 * it: the patch check, stripping server members, validation and the rules of
 * the descriptor the first byte picks. The rest of the input is the stored
 * document, byte 0xFF, the patch (0xFF never occurs in UTF-8).
 *
 * Properties: the result equals the RFC's algorithm written out here (a
 * second, functional implementation); applying the patch again changes nothing
 * (merge patches are idempotent); the result serialises to JSON the strict parser
 * accepts (no duplicate keys); a patch the check accepts cannot bring in a
 * read-only or unknown top-level member. */
#include <math.h>

#include "descriptors.h"
#include "fuzz.h"
#include "subreg/json.h"
#include "subreg/util.h"

/* Structural equality; object members compared as sets (their order is not
 * part of JSON's data model), numbers exactly. */
static bool same(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xFF) != (b->type & 0xFF)) return false;
    if (cJSON_IsNumber(a)) return a->valuedouble == b->valuedouble || (isnan(a->valuedouble) && isnan(b->valuedouble));
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!same(x, y)) return false;
        return !x && !y;
    }
    if (cJSON_IsObject(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = json_get(b, x->string);
            if (!y || !same(x, y)) return false;
        }
    }
    return true;
}

/* RFC 7396 section 2, as written there: returns a new value. */
static cJSON *reference_merge(const cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) return cJSON_Duplicate(patch, true);
    cJSON *out = cJSON_IsObject(target) ? cJSON_Duplicate(target, true) : cJSON_CreateObject();
    for (const cJSON *p = patch->child; p; p = p->next) {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, p->string);
            continue;
        }
        cJSON *merged = reference_merge(json_get(out, p->string), p);
        cJSON_DeleteItemFromObjectCaseSensitive(out, p->string);
        cJSON_AddItemToObject(out, p->string, merged);
    }
    return out;
}

static bool parse_piece(const uint8_t *data, size_t size, int n, cJSON **out)
{
    const uint8_t *p;
    size_t len;
    char err[200];
    fuzz_piece(data, size, 0xFF, n, &p, &len);
    *out = json_parse_strict((const char *)p, len, err, sizeof err);
    return *out != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const resource *res = fuzz_descriptor(data[0]);
    cJSON *target = NULL, *patch = NULL;
    if (!parse_piece(data + 1, size - 1, 0, &target) || !parse_piece(data + 1, size - 1, 1, &patch)) {
        cJSON_Delete(target);
        cJSON_Delete(patch);
        return 0;
    }
    /* merge_patch's contract: an object into an object (crud.c refuses other
     * patches first; the stored document is an object) */
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
    }

    verrors e;
    verrors_init(&e);
    bool patch_ok = schema_check_patch(res->fields, patch, &e);
    CHECK(patch_ok == (e.count == 0), "check result %d with %d errors", patch_ok, e.count);
    verrors_free(&e);
    if (cJSON_IsObject(patch)) {
        cJSON *expect = reference_merge(target, patch);
        cJSON *got = cJSON_Duplicate(target, true);
        merge_patch(got, patch);
        char *text = json_dump(got);
        CHECK(same(got, expect), "merge_patch differs from RFC 7396:\n  got %s", text);
        cJSON *again = cJSON_Duplicate(got, true);
        merge_patch(again, patch);
        CHECK(same(again, got), "applying the patch twice changed the result: %s", text);
        char err[200] = "";
        cJSON *reparsed = json_parse_strict(text, strlen(text), err, sizeof err);
        CHECK(reparsed, "the result is not strict JSON (%s): %s", err, text);
        cJSON_Delete(reparsed);
        free(text);
        cJSON_Delete(again);
        cJSON_Delete(got);
        cJSON_Delete(expect);
    }

    if (patch_ok) {
        /* handle_patch: the stored document less its server members, patched,
         * validated, then the rules with before and after */
        cJSON *client = cJSON_Duplicate(target, true);
        schema_strip_server_fields(res->fields, client);
        merge_patch(client, patch);
        verrors_init(&e);
        bool ok = schema_validate(res->fields, client, &e);
        CHECK(ok == (e.count == 0), "validation result %d with %d errors", ok, e.count);
        for (const cJSON *c = e.list->child; c; c = c->next) {
            const char *ptr = json_get_str(c, "pointer"), *msg = json_get_str(c, "message");
            bool top = ptr && ptr[0] == '/' && !strchr(ptr + 1, '/');
            CHECK(!top || strcmp(msg, "read-only field, set by the server") != 0,
                  "a checked patch brought in the read-only member %s", ptr);
            CHECK(utf8_valid(ptr, strlen(ptr)), "pointer is not valid UTF-8");
        }
        verrors_free(&e);
        if (ok) {
            verrors_init(&e);
            rule_result r = {0};
            resource_rules(res, target, client, &e, &r);
            CHECK(r.status == 0 || (r.status == 400 && e.count > 0) || (r.status == 422 && r.detail[0]),
                  "rule outcome %d (%d errors, detail \"%s\")", r.status, e.count, r.detail);
            verrors_free(&e);
            if (res->on_update) res->on_update(target, client);
        }
        cJSON_Delete(client);
    }
    cJSON_Delete(target);
    cJSON_Delete(patch);
    return 0;
}
