/* Per-resource validation (domain/schema.c with every descriptor of resources.c
 * and friends), as the create path runs it: defaults, the field table, then the
 * descriptor's rules and lifecycle. The first byte picks the descriptor, the
 * rest is the request body.
 *
 * Properties: validation fails exactly when it reports errors; every error's
 * pointer is "" or a JSON pointer and, like its message, valid UTF-8 (they go
 * into the 400 response); a rule outcome is 0, 400 with errors, or 422 with a
 * detail; a valid document converts to BSON, survives serialise -> parse and
 * stays valid; defaults are idempotent; the patch check and the scalar parser
 * of list filters agree with themselves on the same input. */
#include "descriptors.h"
#include "fuzz.h"
#include "subreg/json.h"
#include "subreg/util.h"

static void check_errors(const verrors *e, bool ok)
{
    CHECK(ok == (e->count == 0), "result %d but %d errors", ok, e->count);
    CHECK(cJSON_GetArraySize(e->list) == (e->count > 50 ? 50 : e->count), "error list length");
    for (const cJSON *c = e->list->child; c; c = c->next) {
        const char *ptr = json_get_str(c, "pointer"), *msg = json_get_str(c, "message");
        CHECK(ptr && msg && *msg, "an error without pointer or message");
        CHECK(ptr[0] == '\0' || ptr[0] == '/', "pointer \"%s\" is not a JSON pointer", ptr);
        CHECK(utf8_valid(ptr, strlen(ptr)), "pointer is not valid UTF-8 (%zu bytes)", strlen(ptr));
        CHECK(utf8_valid(msg, strlen(msg)), "message is not valid UTF-8: %s", msg);
    }
}

static void check_rules(const resource *res, const cJSON *before, const cJSON *after)
{
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(res, before, after, &e, &r);
    CHECK(r.status == 0 || r.status == 400 || r.status == 422, "rule status %d", r.status);
    if (r.status == 400) CHECK(e.count > 0, "400 without errors");
    if (r.status == 422) CHECK(r.detail[0] != '\0', "422 without detail");
    if (r.status == 400) check_errors(&e, false);
    verrors_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const resource *res = fuzz_descriptor(data[0]);
    char err[256];
    cJSON *body = json_parse_strict((const char *)data + 1, size - 1, err, sizeof err);
    if (!body) return 0;

    verrors e;
    verrors_init(&e);
    bool patch_ok = schema_check_patch(res->fields, body, &e);
    check_errors(&e, patch_ok);
    verrors_free(&e);

    schema_apply_defaults(res->fields, body);
    char *once = json_dump(body);
    schema_apply_defaults(res->fields, body);
    char *twice = json_dump(body);
    CHECK(strcmp(once, twice) == 0, "defaults not idempotent:\n  %s\n  %s", once, twice);
    free(twice);

    verrors_init(&e);
    bool ok = schema_validate(res->fields, body, &e);
    check_errors(&e, ok);
    verrors_free(&e);
    if (ok) {
        bson_t b = BSON_INITIALIZER;
        CHECK(json_to_bson(body, &b), "a valid %s does not convert to BSON: %s", res->type, once);
        bson_destroy(&b);
        cJSON *again = json_parse_strict(once, strlen(once), err, sizeof err);
        CHECK(again, "a valid %s does not parse after serialising (%s)", res->type, err);
        verrors_init(&e);
        CHECK(schema_validate(res->fields, again, &e), "a valid %s is invalid after serialise -> parse", res->type);
        verrors_free(&e);
        cJSON_Delete(again);
        check_rules(res, NULL, body);   /* create */
        check_rules(res, body, body);   /* an update that changes nothing */
        cJSON *stripped = cJSON_Duplicate(body, true);
        schema_strip_server_fields(res->fields, stripped);
        verrors_init(&e);
        CHECK(schema_validate(res->fields, stripped, &e), "a valid %s is invalid after stripping", res->type);
        verrors_free(&e);
        cJSON_Delete(stripped);
    }

    /* The body's top-level strings as list filter values (?param=value). */
    for (const filter_def *f = res->filters; f && f->param; f++) {
        const char *v = json_get_str(body, f->param);
        if (!v) continue;
        char msg[200] = "";
        cJSON *val = schema_parse_scalar(f->type, v, msg, sizeof msg);
        CHECK(val || msg[0], "filter %s refused without a message", f->param);
        if (val && cJSON_IsString(val)) CHECK(strcmp(val->valuestring, v) == 0, "filter %s changed the value", f->param);
        cJSON_Delete(val);
    }
    free(once);
    cJSON_Delete(body);
    return 0;
}
