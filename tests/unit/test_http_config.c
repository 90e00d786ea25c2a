/* SPDX-License-Identifier: Apache-2.0
 *
 * The HTTP server's runtime settings: sizes, API keys (secret resolution, constant-time check), cache, CORS
 * and TLS blocks read from a parsed spicepod, with Spice's defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_config.h"

static void test_sizes(void **state) {
  (void)state;
  struct { const char *in; uint64_t want; } ok[] = {
      {"128MiB", 128u << 20}, {"64KiB", 64u << 10}, {"1GB", 1000000000u}, {"4096", 4096}, {"1.5MiB", 3u << 19},
      {"10 mb", 10000000u}, {"2g", 2u << 30}, {"0", 0},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 1;
    assert_int_equal(sp_http_parse_size(ok[i].in, &v, NULL), SP_OK);
    assert_int_equal(v, ok[i].want);
  }
  const char *bad[] = {"", "abc", "-1MiB", "12XB", "MiB", "1e400GiB"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v;
    sp_error err = {0};
    assert_int_equal(sp_http_parse_size(bad[i], &v, &err), SP_EINVAL);
    assert_non_null(strstr(err.msg, "invalid size"));
  }
}

static void test_key_check(void **state) {
  (void)state;
  char *keys[] = {"abc", "1234"};
  sp_http_config c = {.auth_enabled = true, .api_keys = keys, .n_api_keys = 2};
  assert_true(sp_http_key_valid(&c, "abc", 3));
  assert_true(sp_http_key_valid(&c, "1234", 4));
  assert_false(sp_http_key_valid(&c, "ab", 2));
  assert_false(sp_http_key_valid(&c, "abcd", 4));
  assert_false(sp_http_key_valid(&c, "123", 3));
  assert_false(sp_http_key_valid(&c, "", 0));
  assert_false(sp_http_key_valid(&c, NULL, 0));
  assert_false(sp_http_key_valid(&c, "abc\0", 4)); /* the length counts */
  sp_http_config none = {.auth_enabled = true};
  assert_false(sp_http_key_valid(&none, "", 0));
}

static sp_pod *parse(const char *yaml) {
  sp_pod *pod = NULL;
  sp_error err = {0};
  if (sp_pod_parse(yaml, strlen(yaml), NULL, NULL, &pod, &err) != SP_OK) fail_msg("pod: %s", err.msg);
  return pod;
}

static void test_defaults(void **state) {
  (void)state;
  sp_pod *pod = parse("version: v1\nkind: Spicepod\nname: x\n");
  sp_http_config c;
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_false(c.auth_enabled);
  assert_true(c.cache_enabled);
  assert_int_equal(c.cache_max_bytes, 128u << 20);
  assert_int_equal(c.cache_ttl_ms, 1000);
  assert_false(c.cors_enabled);
  assert_false(c.tls_enabled);
  sp_http_config_free(&c);
  sp_pod_free(pod);
  assert_int_equal(sp_http_config_load(NULL, &c, NULL), SP_OK);
  assert_true(c.cache_enabled);
  sp_http_config_free(&c);
}

static void test_keys_from_secrets(void **state) {
  (void)state;
  setenv("SPICE_UNIT_HTTP_KEY", "from-env", 1);
  unsetenv("SPICE_UNIT_MISSING_KEY");
  unsetenv("UNIT_MISSING_KEY");
  sp_pod *pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n  auth:\n    api-key:\n      enabled: true\n"
                      "      keys: [\"${secrets:unit_http_key}\", \"${env:unit_missing_key}\", \"\", \"plain\"]\n");
  sp_http_config c;
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_true(c.auth_enabled);
  assert_int_equal(c.n_api_keys, 2);
  assert_string_equal(c.api_keys[0], "from-env");
  assert_string_equal(c.api_keys[1], "plain");
  assert_true(sp_http_key_valid(&c, "from-env", 8));
  assert_false(sp_http_key_valid(&c, "${secrets:unit_http_key}", 24));
  sp_http_config_free(&c);
  sp_pod_free(pod);

  pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n  auth:\n    api-key:\n      enabled: false\n"
              "      keys: [k]\n");
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_false(c.auth_enabled);
  sp_http_config_free(&c);
  sp_pod_free(pod);
}

static void test_cache_cors_tls(void **state) {
  (void)state;
  sp_pod *pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n"
                      "  caching:\n    sql_results:\n      max_size: 1MiB\n      item_ttl: 5s\n"
                      "  cors:\n    enabled: true\n");
  sp_http_config c;
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_true(c.cache_enabled);
  assert_int_equal(c.cache_max_bytes, 1u << 20);
  assert_int_equal(c.cache_ttl_ms, 5000);
  assert_true(c.cors_enabled);
  assert_int_equal(c.n_cors_origins, 1);
  assert_string_equal(c.cors_origins[0], "*");
  sp_http_config_free(&c);
  sp_pod_free(pod);

  /* results_cache wins over caching.sql_results, as in the pod loader. */
  pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n"
              "  results_cache:\n    enabled: false\n    cache_max_size: 2MiB\n"
              "  caching:\n    sql_results:\n      enabled: true\n      max_size: 1MiB\n");
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_false(c.cache_enabled);
  assert_int_equal(c.cache_max_bytes, 2u << 20);
  sp_http_config_free(&c);
  sp_pod_free(pod);

  sp_error err = {0};
  pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n  tls:\n    enabled: true\n    certificate: abc\n");
  assert_int_equal(sp_http_config_load(pod, &c, &err), SP_EINVAL);
  assert_string_equal(err.msg, "runtime.tls is enabled but has no key or key_file");
  sp_http_config_free(&c);
  sp_pod_free(pod);

  pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n  tls:\n    enabled: true\n"
              "    certificate_file: /nonexistent/cert.pem\n    key: k\n");
  assert_int_equal(sp_http_config_load(pod, &c, &err), SP_EIO);
  assert_non_null(strstr(err.msg, "/nonexistent/cert.pem"));
  sp_http_config_free(&c);
  sp_pod_free(pod);

  pod = parse("version: v1\nkind: Spicepod\nname: x\nruntime:\n  tls:\n    enabled: true\n"
              "    certificate: CERT\n    key: KEY\n");
  assert_int_equal(sp_http_config_load(pod, &c, NULL), SP_OK);
  assert_true(c.tls_enabled);
  assert_string_equal(c.tls_cert_pem, "CERT");
  assert_string_equal(c.tls_key_pem, "KEY");
  sp_http_config_free(&c);
  sp_pod_free(pod);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),          cmocka_unit_test(test_key_check),
      cmocka_unit_test(test_defaults),       cmocka_unit_test(test_keys_from_secrets),
      cmocka_unit_test(test_cache_cors_tls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
