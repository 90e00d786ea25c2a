/* SPDX-License-Identifier: Apache-2.0
 *
 * The text the mysql connector reads (src/connectors/mysql_text.c): connection URLs split and decoded, and the
 * server's text for dates, datetimes, times and decimals turned into Arrow's values — with the edges (zero
 * dates, extremes of each type, malformed text) checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/mysql_text.h"

#define S(x) x, strlen(x)

static void url_full(void **state) {
  (void)state;
  myt_url u;
  sp_error err = {0};
  assert_int_equal(myt_parse_url("mysql://us%40er:p%3Ass@w@db.example:3307/my%20db?ssl-mode=x", &u, &err), SP_OK);
  assert_string_equal(u.user, "us@er");
  assert_string_equal(u.pass, "p:ss@w");
  assert_string_equal(u.host, "db.example");
  assert_string_equal(u.db, "my db");
  assert_int_equal(u.port, 3307);
  myt_url_free(&u);
  assert_int_equal(myt_parse_url("mysql://[::1]:3306", &u, &err), SP_OK);
  assert_string_equal(u.host, "::1");
  assert_null(u.user);
  assert_null(u.db);
  assert_int_equal(u.port, 3306);
  myt_url_free(&u);
  assert_int_equal(myt_parse_url("mysql://h", &u, &err), SP_OK);
  assert_string_equal(u.host, "h");
  assert_int_equal(u.port, 0);
  myt_url_free(&u);
}

static void url_bad(void **state) {
  (void)state;
  myt_url u;
  sp_error err = {0};
  const char *bad[] = {"postgres://h", "mysql://u:secret@h:0", "mysql://u:secret@h:99999", "mysql://u:secret@h:x",
                       "mysql://u:se%zzcret@h", "mysql://u:se%00cret@h", "mysql://[::1", "mysql://u:secret@h:33a/db"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(myt_parse_url(bad[i], &u, &err), SP_EINVAL);
    assert_null(strstr(err.msg, "secret")); /* never the password */
    assert_null(u.host);
  }
}

static void dates(void **state) {
  (void)state;
  int32_t d = 0;
  int64_t us = 0;
  assert_int_equal(myt_parse_date(S("1970-01-01"), &d), 0);
  assert_int_equal(d, 0);
  assert_int_equal(myt_parse_date(S("1969-07-20"), &d), 0);
  assert_int_equal(d, -165);
  assert_int_equal(myt_parse_date(S("9999-12-31"), &d), 0);
  assert_int_equal(d, 2932896);
  assert_int_equal(myt_parse_date(S("0000-00-00"), &d), 1);
  assert_int_equal(myt_parse_date(S("2024-13-01"), &d), -1);
  assert_int_equal(myt_parse_date(S("2024-01-01x"), &d), -1);
  assert_int_equal(myt_parse_datetime(S("2024-02-29 12:34:56.789012"), &us), 0);
  assert_true(us == INT64_C(1709210096789012));
  assert_int_equal(myt_parse_datetime(S("1900-01-01 00:00:00.5"), &us), 0);
  assert_true(us == INT64_C(-2208988800000000) + 500000);
  assert_int_equal(myt_parse_datetime(S("0000-00-00 00:00:00"), &us), 1);
  assert_int_equal(myt_parse_datetime(S("2024-01-01 24:00:00"), &us), -1);
  assert_int_equal(myt_parse_datetime(S("2024-01-01 10:00:00."), &us), -1);
}

static void times(void **state) {
  (void)state;
  int64_t us = 0;
  assert_int_equal(myt_parse_time(S("23:59:59.999999"), &us), 0);
  assert_true(us == INT64_C(86399999999));
  assert_int_equal(myt_parse_time(S("-838:59:59"), &us), 0);
  assert_true(us == -INT64_C(3020399000000));
  assert_int_equal(myt_parse_time(S("12:00:00.5"), &us), 0);
  assert_true(us == INT64_C(43200500000));
  assert_int_equal(myt_parse_time(S("12:60:00"), &us), -1);
  assert_int_equal(myt_parse_time(S(":00:00"), &us), -1);
}

static void decimals(void **state) {
  (void)state;
  uint64_t lo;
  int64_t hi;
  assert_int_equal(myt_parse_decimal(S("-0.01"), 9, 2, &lo, &hi), 0);
  assert_true(lo == UINT64_MAX && hi == -1);
  assert_int_equal(myt_parse_decimal(S("1234567.89"), 9, 2, &lo, &hi), 0);
  assert_true(lo == 123456789 && hi == 0);
  /* 10^38 - 1 fits decimal(38,10); its halves */
  assert_int_equal(myt_parse_decimal(S("9999999999999999999999999999.9999999999"), 38, 10, &lo, &hi), 0);
  assert_true(lo == UINT64_C(0x098a223fffffffff) && hi == INT64_C(0x4b3b4ca85a86c47a));
  assert_int_equal(myt_parse_decimal(S("12"), 9, 2, &lo, &hi), 0);
  assert_true(lo == 1200 && hi == 0);
  assert_int_equal(myt_parse_decimal(S("1234567890.00"), 9, 2, &lo, &hi), -1); /* over the precision */
  assert_int_equal(myt_parse_decimal(S("1.234"), 9, 2, &lo, &hi), -1);         /* over the scale */
  assert_int_equal(myt_parse_decimal(S("-"), 9, 2, &lo, &hi), -1);
  assert_int_equal(myt_parse_decimal(S("1e5"), 9, 2, &lo, &hi), -1);
  assert_int_equal(myt_parse_decimal(S("1"), 39, 2, &lo, &hi), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(url_full), cmocka_unit_test(url_bad), cmocka_unit_test(dates),
      cmocka_unit_test(times), cmocka_unit_test(decimals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
