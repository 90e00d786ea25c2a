/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spice/error.h"

static void test_fail_formats_and_returns_code(void **state) {
  (void)state;
  sp_error err;
  int rc = sp_fail(&err, SP_ENOTFOUND, "dataset \"%s\" not found", "trips");
  assert_int_equal(rc, SP_ENOTFOUND);
  assert_int_equal(err.code, SP_ENOTFOUND);
  assert_string_equal(err.msg, "dataset \"trips\" not found");
  sp_error_prefix(&err, "refresh of %s", "trips");
  assert_string_equal(err.msg, "refresh of trips: dataset \"trips\" not found");
  assert_int_equal(sp_fail(NULL, SP_EINVAL, "x"), SP_EINVAL);
  assert_string_equal(sp_status_name(SP_EDENIED), "EDENIED");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fail_formats_and_returns_code)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
