/* resources: every descriptor declares its roles (deny by default), and the
 * lifecycle tables the write path enforces for subprocessors, agreements and
 * TOM documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/json.h"
#include "subreg/resource.h"

static void test_every_descriptor_declares_its_roles(void **state)
{
    (void)state;
    int n = 0;
    for (int i = 0; RESOURCES[i]; i++, n++) {
        if (!resource_roles_declared(RESOURCES[i])) fail_msg("%s declares no roles", RESOURCES[i]->type);
    }
    assert_true(n >= 13);
}

static void test_a_descriptor_without_a_role_is_refused(void **state)
{
    (void)state;
    resource r = RES_AGREEMENT;
    assert_true(resource_roles_declared(&r));
    r.delete_role = ROLE_NONE;
    assert_false(resource_roles_declared(&r));
    r = RES_AGREEMENT;
    r.read_role = ROLE_NONE;
    assert_false(resource_roles_declared(&r));
    r = RES_AGREEMENT;
    r.write_role = ROLE_NONE;
    assert_false(resource_roles_declared(&r));
}

/* The rule outcome for a status change from → to (from NULL: a create). Only the
 * status differs, so a 422 comes from the lifecycle alone. */
static int lifecycle(const resource *res, const char *from, const char *to)
{
    cJSON *after = cJSON_CreateObject();
    cJSON_AddStringToObject(after, "status", to);
    cJSON *before = NULL;
    if (from) {
        before = cJSON_CreateObject();
        cJSON_AddStringToObject(before, "status", from);
    }
    resource bare = *res;
    bare.check = NULL; /* the descriptor's other rules need a whole document */
    verrors e;
    verrors_init(&e);
    rule_result r = {0};
    resource_rules(&bare, before, after, &e, &r);
    if (r.status == 422) assert_non_null(strstr(r.detail, to));
    verrors_free(&e);
    cJSON_Delete(before);
    cJSON_Delete(after);
    return r.status;
}

static void test_subprocessor_lifecycle(void **state)
{
    (void)state;
    const resource *sp = &RES_SUBPROCESSOR;
    assert_int_equal(lifecycle(sp, NULL, "proposed"), 0);
    assert_int_equal(lifecycle(sp, NULL, "active"), 0);
    assert_int_equal(lifecycle(sp, NULL, "retired"), 422);
    assert_int_equal(lifecycle(sp, "proposed", "active"), 0);
    assert_int_equal(lifecycle(sp, "proposed", "retired"), 0);
    assert_int_equal(lifecycle(sp, "active", "retired"), 0);
    assert_int_equal(lifecycle(sp, "retired", "proposed"), 0);
    assert_int_equal(lifecycle(sp, "active", "active"), 0);
    assert_int_equal(lifecycle(sp, "active", "proposed"), 422);
    assert_int_equal(lifecycle(sp, "retired", "active"), 422);
}

static void test_agreement_lifecycle(void **state)
{
    (void)state;
    const resource *ag = &RES_AGREEMENT;
    assert_int_equal(lifecycle(ag, NULL, "superseded"), 0); /* any status at creation */
    assert_int_equal(lifecycle(ag, "draft", "active"), 0);
    assert_int_equal(lifecycle(ag, "draft", "terminated"), 0);
    assert_int_equal(lifecycle(ag, "active", "expired"), 0);
    assert_int_equal(lifecycle(ag, "active", "terminated"), 0);
    assert_int_equal(lifecycle(ag, "active", "superseded"), 0);
    assert_int_equal(lifecycle(ag, "expired", "active"), 0);
    assert_int_equal(lifecycle(ag, "terminated", "active"), 422);
    assert_int_equal(lifecycle(ag, "active", "draft"), 422);
    assert_int_equal(lifecycle(ag, "superseded", "active"), 422);
}

static void test_tom_lifecycle(void **state)
{
    (void)state;
    const resource *tom = &RES_TOM;
    assert_int_equal(lifecycle(tom, "draft", "active"), 0);
    assert_int_equal(lifecycle(tom, "active", "superseded"), 0);
    assert_int_equal(lifecycle(tom, "active", "archived"), 0);
    assert_int_equal(lifecycle(tom, "superseded", "archived"), 0);
    assert_int_equal(lifecycle(tom, "draft", "archived"), 0);
    assert_int_equal(lifecycle(tom, "archived", "active"), 422);
    assert_int_equal(lifecycle(tom, "superseded", "active"), 422);
}

static void test_resources_without_a_lifecycle_take_any_status(void **state)
{
    (void)state;
    assert_int_equal(lifecycle(&RES_CUSTOMER, "inactive", "active"), 0);
    assert_int_equal(lifecycle(&RES_CUSTOMER, "active", "inactive"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_descriptor_declares_its_roles),
        cmocka_unit_test(test_a_descriptor_without_a_role_is_refused),
        cmocka_unit_test(test_subprocessor_lifecycle),
        cmocka_unit_test(test_agreement_lifecycle),
        cmocka_unit_test(test_tom_lifecycle),
        cmocka_unit_test(test_resources_without_a_lifecycle_take_any_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
