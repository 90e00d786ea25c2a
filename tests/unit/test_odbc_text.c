/* SPDX-License-Identifier: Apache-2.0
 *
 * The text the odbc connector reads (src/connectors/odbc_text.c): connection strings looked up, redacted for
 * messages (braced values, "}}" escapes, every kind of secret key), driver messages scrubbed of passwords, and
 * UTF-16 turned into UTF-8 (surrogate pairs, unpaired surrogates).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/odbc_text.h"

static void get_values(void **state) {
  (void)state;
  char v[64];
  const char *cs = "DRIVER={PostgreSQL Unicode};Server=db1; Port =5432;PWD={a;b}}c=d};Database=x";
  assert_int_equal(odt_get(cs, "driver", v, sizeof v), 1);
  assert_string_equal(v, "PostgreSQL Unicode");
  assert_int_equal(odt_get(cs, "PORT", v, sizeof v), 1);
  assert_string_equal(v, "5432");
  assert_int_equal(odt_get(cs, "pwd", v, sizeof v), 1);
  assert_string_equal(v, "a;b}c=d");
  assert_int_equal(odt_get(cs, "database", v, sizeof v), 1);
  assert_string_equal(v, "x");
  assert_int_equal(odt_get(cs, "UID", v, sizeof v), 0);
  assert_int_equal(odt_get(cs, "driver", v, 4), 0); /* does not fit */
  assert_int_equal(odt_get("", "driver", v, sizeof v), 0);
}

static void redact(void **state) {
  (void)state;
  char out[256];
  odt_redact("DRIVER=/x/psqlodbcw.so;SERVER=h;UID=me;PWD={p;w}}d};Port=1", out, sizeof out);
  assert_string_equal(out, "DRIVER=/x/psqlodbcw.so;SERVER=h;UID=me;PWD=***;Port=1");
  odt_redact("Password=abc;AuthToken=t0k;ClientSecret=s;Host=h", out, sizeof out);
  assert_string_equal(out, "Password=***;AuthToken=***;ClientSecret=***;Host=h");
  odt_redact("DSN=x;PWD=secretsecret", out, 12); /* cut short: never a piece of the secret */
  assert_null(strstr(out, "secret"));
  assert_int_equal(strlen(out), 11);
}

static void scrub(void **state) {
  (void)state;
  char msg[128] = "FATAL: password for hunter22 rejected (hunter22)";
  odt_scrub("UID=u;PWD=hunter22", msg);
  assert_string_equal(msg, "FATAL: password for *** rejected (***)");
  char short_pw[64] = "a b a";
  odt_scrub("PWD=a", short_pw); /* one- and two-byte secrets would scrub ordinary text: left alone */
  assert_string_equal(short_pw, "a b a");
}

static void utf16(void **state) {
  (void)state;
  const uint16_t in[] = {'c', 'a', 'f', 0xE9, ' ', 0x2615, ' ', 0xD834, 0xDD1E, 0xD800, 'x', 0xDC00};
  char out[3 * 12];
  size_t n = odt_utf16_to_utf8(in, 12, out);
  const char want[] = "caf\xC3\xA9 \xE2\x98\x95 \xF0\x9D\x84\x9E\xEF\xBF\xBDx\xEF\xBF\xBD";
  assert_int_equal(n, sizeof want - 1);
  assert_memory_equal(out, want, n);
  assert_int_equal(odt_utf16_to_utf8(in, 0, out), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_values), cmocka_unit_test(redact), cmocka_unit_test(scrub), cmocka_unit_test(utf16),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
