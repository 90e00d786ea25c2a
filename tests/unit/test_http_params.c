/* SPDX-License-Identifier: Apache-2.0
 *
 * HTTP request parsing: /v1/sql bodies (raw SQL and JSON with parameters), Accept negotiation,
 * percent-decoding and query strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/http_params.h"

static int parse(const char *body, bool json, sp_sql_body *out, sp_error *err) {
  return sp_http_parse_sql_body(body, strlen(body), json, out, err);
}

static void test_raw_body(void **state) {
  (void)state;
  sp_sql_body b;
  sp_error err = {0};
  const char *sql = "SELECT 'é' AS x";
  assert_int_equal(parse(sql, false, &b, &err), SP_OK);
  assert_ptr_equal(b.sql, sql); /* borrowed, not copied */
  assert_int_equal(b.n_params, 0);
  sp_sql_body_free(&b);

  const char bad[] = "SELECT '\xff'";
  assert_int_equal(sp_http_parse_sql_body(bad, sizeof bad - 1, false, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "request body is not valid UTF-8 (invalid byte at offset 8)");
  const char overlong[] = "SELECT '\xc0\xaf'";
  assert_int_equal(sp_http_parse_sql_body(overlong, sizeof overlong - 1, false, &b, &err), SP_EINVAL);
  const char surrogate[] = "\xed\xa0\x80";
  assert_int_equal(sp_http_parse_sql_body(surrogate, sizeof surrogate - 1, false, &b, &err), SP_EINVAL);
  const char nul[] = "SELECT 1\0 --";
  assert_int_equal(sp_http_parse_sql_body(nul, sizeof nul - 1, false, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "request body contains a NUL byte");
}

static void test_json_positional(void **state) {
  (void)state;
  sp_sql_body b;
  sp_error err = {0};
  assert_int_equal(parse("{\"sql\": \"SELECT $1, $2, $3, $4, $5, $6\", "
                         "\"parameters\": [null, true, false, -42, 2.5, \"x\\u00e9\"]}",
                         true, &b, &err),
                   SP_OK);
  assert_string_equal(b.sql, "SELECT $1, $2, $3, $4, $5, $6");
  assert_int_equal(b.n_params, 6);
  assert_int_equal(b.params[0].type, SP_VALUE_NULL);
  assert_int_equal(b.params[1].type, SP_VALUE_BOOL);
  assert_true(b.params[1].v.b);
  assert_false(b.params[2].v.b);
  assert_int_equal(b.params[3].type, SP_VALUE_INT);
  assert_int_equal(b.params[3].v.i, -42);
  assert_int_equal(b.params[4].type, SP_VALUE_DOUBLE);
  assert_true(b.params[4].v.d == 2.5);
  assert_int_equal(b.params[5].type, SP_VALUE_STRING);
  assert_string_equal(b.params[5].v.s, "x\xc3\xa9");
  for (size_t i = 0; i < 6; i++) assert_null(b.params[i].name);
  sp_sql_body_free(&b);

  assert_int_equal(parse("{\"sql\": \"SELECT 1\", \"parameters\": [9223372036854775807]}", true, &b, &err), SP_OK);
  assert_int_equal(b.params[0].v.i, INT64_MAX);
  sp_sql_body_free(&b);
}

static void test_json_named(void **state) {
  (void)state;
  sp_sql_body b;
  sp_error err = {0};
  assert_int_equal(parse("{\"sql\": \"SELECT $id, $name\", \"parameters\": {\"id\": 7, \"$name\": \"bob\", \":z\": null}}",
                         true, &b, &err),
                   SP_OK);
  assert_int_equal(b.n_params, 3);
  assert_string_equal(b.params[0].name, "id");
  assert_int_equal(b.params[0].v.i, 7);
  assert_string_equal(b.params[1].name, "name");
  assert_string_equal(b.params[1].v.s, "bob");
  assert_string_equal(b.params[2].name, "z");
  assert_int_equal(b.params[2].type, SP_VALUE_NULL);
  sp_sql_body_free(&b);

  assert_int_equal(parse("{\"sql\": \"SELECT 1\", \"parameters\": null, \"extra\": 1}", true, &b, &err), SP_OK);
  assert_int_equal(b.n_params, 0);
  sp_sql_body_free(&b);
}

static void test_json_errors(void **state) {
  (void)state;
  sp_sql_body b;
  sp_error err = {0};
  assert_int_equal(parse("{\"sql\": ", true, &b, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "request body is not valid JSON"));
  assert_int_equal(parse("[1]", true, &b, &err), SP_EINVAL);
  assert_int_equal(parse("{\"query\": \"SELECT 1\"}", true, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "request body must have a \"sql\" string");
  assert_int_equal(parse("{\"sql\": 1}", true, &b, &err), SP_EINVAL);
  assert_int_equal(parse("{\"sql\": \"x\", \"parameters\": 5}", true, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "\"parameters\" must be an array (positional) or an object (named)");
  assert_int_equal(parse("{\"sql\": \"x\", \"parameters\": [1, [2]]}", true, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "parameter $2 must be null, a boolean, a number or a string");
  assert_int_equal(parse("{\"sql\": \"x\", \"parameters\": {\"a\": {}}}", true, &b, &err), SP_EINVAL);
  assert_string_equal(err.msg, "parameter \"a\" must be null, a boolean, a number or a string");
  assert_int_equal(parse("{\"sql\": \"x\", \"parameters\": {\"$\": 1}}", true, &b, &err), SP_EINVAL);
  assert_int_equal(parse("{\"sql\": \"x\", \"sql\": \"y\"}", true, &b, &err), SP_EINVAL);   /* duplicate key */
  assert_int_equal(parse("{\"sql\": \"a\\u0000b\"}", true, &b, &err), SP_EINVAL);       /* NUL in the SQL */
  assert_int_equal(parse("{\"sql\": \"x\", \"parameters\": [99999999999999999999]}", true, &b, &err), SP_EINVAL);
}

static void test_content_type(void **state) {
  (void)state;
  assert_true(sp_http_is_json_content_type("application/json"));
  assert_true(sp_http_is_json_content_type("Application/JSON; charset=utf-8"));
  assert_true(sp_http_is_json_content_type(" application/json "));
  assert_false(sp_http_is_json_content_type("text/plain"));
  assert_false(sp_http_is_json_content_type("application/jsonx"));
  assert_false(sp_http_is_json_content_type(NULL));
}

static void test_negotiate(void **state) {
  (void)state;
  assert_int_equal(sp_http_negotiate(NULL), SP_FORMAT_JSON);
  assert_int_equal(sp_http_negotiate(""), SP_FORMAT_JSON);
  assert_int_equal(sp_http_negotiate("*/*"), SP_FORMAT_JSON);
  assert_int_equal(sp_http_negotiate("text/csv"), SP_FORMAT_CSV);
  assert_int_equal(sp_http_negotiate("text/plain"), SP_FORMAT_TABLE);
  assert_int_equal(sp_http_negotiate("application/vnd.spiceai.sql.v1+json"), SP_FORMAT_SQL_V1);
  assert_int_equal(sp_http_negotiate("image/png, TEXT/CSV;q=0.1, application/json"), SP_FORMAT_CSV);
  assert_int_equal(sp_http_negotiate("text/html,application/xhtml+xml,text/plain;q=0.9"), SP_FORMAT_TABLE);
  assert_int_equal(sp_http_negotiate("text/csvx, text/plain"), SP_FORMAT_TABLE);
  assert_int_equal(sp_http_negotiate(" application/json , text/csv"), SP_FORMAT_JSON);
  assert_int_equal(sp_http_negotiate(",,,"), SP_FORMAT_JSON);
}

static void test_percent_decode(void **state) {
  (void)state;
  char out[64];
  size_t n;
  sp_error err = {0};
  assert_int_equal(sp_http_percent_decode("a%20b%2Fc", 9, false, out, &n, &err), SP_OK);
  assert_string_equal(out, "a b/c");
  assert_int_equal(n, 5);
  assert_int_equal(sp_http_percent_decode("a+b", 3, false, out, &n, &err), SP_OK);
  assert_string_equal(out, "a+b");
  assert_int_equal(sp_http_percent_decode("a+b%2B", 6, true, out, &n, &err), SP_OK);
  assert_string_equal(out, "a b+");
  assert_int_equal(sp_http_percent_decode("%C3%A9%e6%97%a5", 15, false, out, &n, &err), SP_OK);
  assert_string_equal(out, "\xc3\xa9\xe6\x97\xa5");
  assert_int_equal(sp_http_percent_decode("", 0, false, out, &n, &err), SP_OK);
  assert_int_equal(n, 0);
  assert_int_equal(sp_http_percent_decode("%", 1, false, out, &n, &err), SP_EINVAL);
  assert_int_equal(sp_http_percent_decode("%4", 2, false, out, &n, &err), SP_EINVAL);
  assert_int_equal(sp_http_percent_decode("%zz", 3, false, out, &n, &err), SP_EINVAL);
  assert_int_equal(sp_http_percent_decode("a%00b", 5, false, out, &n, &err), SP_EINVAL);
  /* Only n bytes are read: "%41" cut to "%4" is malformed, not 'A'. */
  assert_int_equal(sp_http_percent_decode("%41", 2, false, out, &n, &err), SP_EINVAL);
}

static void test_query_param(void **state) {
  (void)state;
  char v[16];
  sp_error err = {0};
  assert_int_equal(sp_http_query_param("format=csv&status=true", "format", v, sizeof v, &err), 1);
  assert_string_equal(v, "csv");
  assert_int_equal(sp_http_query_param("format=csv&status=true", "status", v, sizeof v, &err), 1);
  assert_string_equal(v, "true");
  assert_int_equal(sp_http_query_param("format=csv", "source", v, sizeof v, &err), 0);
  assert_int_equal(sp_http_query_param(NULL, "source", v, sizeof v, &err), 0);
  assert_int_equal(sp_http_query_param("%66ormat=%63sv", "format", v, sizeof v, &err), 1);
  assert_string_equal(v, "csv");
  assert_int_equal(sp_http_query_param("source=spice.ai&x", "x", v, sizeof v, &err), 1);
  assert_string_equal(v, "");
  assert_int_equal(sp_http_query_param("a=b+c%2B", "a", v, sizeof v, &err), 1);
  assert_string_equal(v, "b c+");
  assert_int_equal(sp_http_query_param("formats=json&format=csv", "format", v, sizeof v, &err), 1);
  assert_string_equal(v, "csv");
  assert_int_equal(sp_http_query_param("a=%zz", "a", v, sizeof v, &err), -1);
  assert_int_equal(sp_http_query_param("a=0123456789abcdef", "a", v, sizeof v, &err), -1);
  assert_string_equal(err.msg, "query parameter \"a\" is too long");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_raw_body),     cmocka_unit_test(test_json_positional), cmocka_unit_test(test_json_named),
      cmocka_unit_test(test_json_errors),  cmocka_unit_test(test_content_type),    cmocka_unit_test(test_negotiate),
      cmocka_unit_test(test_percent_decode), cmocka_unit_test(test_query_param),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
