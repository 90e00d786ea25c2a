/* SPDX-License-Identifier: Apache-2.0
 *
 * The spicepod loader: good pods (every field, Spice's defaults), every broken-pod message with its
 * file:line:col, `from` splitting, secrets in params, the JSON copy, folder loading and thread safety.
 * Fixtures live in fixtures/pods/ (the test runs in tests/unit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spice/log.h"
#include "spice/pod.h"
#include "spice/secrets.h"

#define FX "fixtures/pods/"

/* ---- helpers ---- */

#include "capture.h"

static sp_pod *load_ok(const char *path) {
  sp_error err = {0};
  sp_pod *pod = NULL;
  int rc = sp_pod_load(path, NULL, &pod, &err);
  if (rc != SP_OK) fail_msg("%s: %s", path, err.msg);
  return pod;
}

static sp_pod *parse_ok(const char *yaml, sp_secrets *s) {
  sp_error err = {0};
  sp_pod *pod = NULL;
  if (sp_pod_parse(yaml, strlen(yaml), "spicepod.yaml", s, &pod, &err) != SP_OK) fail_msg("%s", err.msg);
  return pod;
}

static const sp_dataset_spec *dataset(const sp_pod *pod, const char *name) {
  for (size_t i = 0; i < pod->n_datasets; i++)
    if (strcmp(pod->datasets[i].name, name) == 0) return &pod->datasets[i];
  fail_msg("no dataset %s", name);
  return NULL;
}

/* ---- good pods ---- */

static void test_full_pod_every_field(void **state) {
  (void)state;
  sp_pod *pod = load_ok(FX "good_full.yaml");
  assert_string_equal(pod->version, "v1");
  assert_string_equal(pod->kind, "Spicepod");
  assert_string_equal(pod->name, "full_pod");
  assert_string_equal(pod->file, FX "good_full.yaml");
  assert_string_equal(pod->dir, "fixtures/pods");
  assert_false(pod->runtime.results_cache_enabled);
  assert_string_equal(pod->runtime.http_addr, "127.0.0.1:18090");
  assert_string_equal(pod->runtime.flight_addr, "127.0.0.1:15051");
  assert_string_equal(sp_params_get(&pod->runtime.params, "parallelism"), "4");
  assert_int_equal(pod->runtime.query_timeout_ms, 45000);

  assert_int_equal(pod->n_datasets, 1);
  const sp_dataset_spec *d = &pod->datasets[0];
  assert_string_equal(d->from, "postgres:public.trips");
  assert_string_equal(d->connector, "postgres");
  assert_string_equal(d->path, "public.trips");
  assert_string_equal(d->name, "trips");
  assert_string_equal(d->description, "NYC taxi trips");
  assert_int_equal(d->mode, SP_MODE_READ_WRITE);
  assert_true(d->replication_enabled);
  assert_string_equal(d->time_column, "pickup_time");
  assert_string_equal(d->time_format, "ISO8601"); /* canonical spelling */
  assert_string_equal(d->ready_state, "on_registration");
  assert_int_equal(d->line, 45);
  assert_int_equal(d->col, 5);
  /* params: stringified, positions kept, unsupported_type_action copied in */
  assert_string_equal(sp_params_get(&d->params, "pg_host"), "db.example.com");
  assert_string_equal(sp_params_get(&d->params, "pg_port"), "5432");
  assert_string_equal(sp_params_get(&d->params, "ratio"), "0.5");
  assert_string_equal(sp_params_get(&d->params, "verbose"), "true");
  assert_string_equal(sp_params_get(&d->params, "unsupported_type_action"), "string");
  const sp_kv *kv = sp_params_find(&d->params, "pg_port");
  assert_int_equal(kv->line, 68);
  assert_int_equal(kv->col, 7);
  assert_ptr_equal(d->params.file, pod->file);

  const sp_acceleration_spec *a = &d->acceleration;
  assert_true(a->present);
  assert_true(a->enabled);
  assert_string_equal(a->engine, "postgres"); /* PostgreSQL -> postgres */
  assert_int_equal(a->mode, SP_ACCEL_FILE);
  assert_int_equal(a->refresh_mode, SP_REFRESH_APPEND);
  assert_true(a->refresh_mode_set);
  assert_int_equal(a->refresh_check_interval_ms, 600000);
  assert_string_equal(a->refresh_sql, "SELECT * FROM trips WHERE fare > 0");
  assert_int_equal(a->refresh_data_window_ms, 86400000);
  assert_int_equal(a->refresh_append_overlap_ms, 300000);
  assert_false(a->refresh_retry_enabled);
  assert_int_equal(a->refresh_retry_max_attempts, 3);
  assert_true(a->refresh_jitter_enabled);
  assert_int_equal(a->refresh_jitter_max_ms, 30000);
  assert_string_equal(sp_params_get(&a->params, "pg_db"), "accel");
  assert_true(a->retention_check_enabled);
  assert_int_equal(a->retention_period_ms, 7 * 86400000LL);
  assert_int_equal(a->retention_check_interval_ms, 3600000);
  assert_string_equal(a->retention_sql, "DELETE FROM trips WHERE fare < 0");
  assert_string_equal(a->on_zero_results, "use_source");
  assert_string_equal(sp_params_get(&a->indexes, "pickup_time"), "enabled");
  assert_string_equal(sp_params_get(&a->indexes, "(vendor, pickup_time)"), "unique");
  assert_string_equal(a->primary_key, "(vendor, pickup_time)");
  assert_string_equal(sp_params_get(&a->on_conflict, "(vendor, pickup_time)"), "upsert");
  assert_string_equal(a->refresh_on_startup, "always");
  assert_int_equal(a->line, 72);

  assert_int_equal(pod->n_views, 1);
  assert_string_equal(pod->views[0].name, "busy_trips");
  assert_string_equal(pod->views[0].sql, "SELECT * FROM trips WHERE passengers > 3");
  assert_string_equal(pod->views[0].description, "trips with many passengers");
  sp_pod_free(pod);
}

static void test_minimal_pod(void **state) {
  (void)state;
  sp_pod *pod = load_ok(FX "good_minimal.yaml");
  assert_string_equal(pod->version, "v1beta1");
  assert_int_equal(pod->n_datasets, 0);
  assert_int_equal(pod->n_views, 0);
  assert_true(pod->runtime.results_cache_enabled);
  assert_null(pod->runtime.http_addr);
  assert_int_equal(pod->runtime.params.count, 0);
  assert_int_equal(pod->runtime.query_timeout_ms, 0); /* no query timeout unless asked */
  assert_string_equal(pod->json, "{\"version\":\"v1beta1\",\"kind\":\"Spicepod\",\"name\":\"minimal\"}");
  sp_pod_free(pod);
}

/* spice-compat §1.3: enabled true when the block is present, engine arrow, mode memory, refresh_mode full,
 * no interval, retries on without a cap, jitter off, return_empty, refresh_on_startup auto. */
static void assert_accel_defaults(const sp_acceleration_spec *a) {
  assert_string_equal(a->engine, "arrow");
  assert_int_equal(a->mode, SP_ACCEL_MEMORY);
  assert_int_equal(a->refresh_mode, SP_REFRESH_FULL);
  assert_false(a->refresh_mode_set);
  assert_int_equal(a->refresh_check_interval_ms, -1);
  assert_null(a->refresh_sql);
  assert_int_equal(a->refresh_data_window_ms, -1);
  assert_int_equal(a->refresh_append_overlap_ms, -1);
  assert_true(a->refresh_retry_enabled);
  assert_int_equal(a->refresh_retry_max_attempts, -1);
  assert_false(a->refresh_jitter_enabled);
  assert_int_equal(a->refresh_jitter_max_ms, -1);
  assert_string_equal(a->on_zero_results, "return_empty");
  assert_null(a->primary_key);
  assert_int_equal(a->params.count, 0);
  assert_false(a->retention_check_enabled);
  assert_int_equal(a->retention_period_ms, -1);
  assert_string_equal(a->refresh_on_startup, "auto");
}

static void test_defaults(void **state) {
  (void)state;
  sp_pod *pod = load_ok(FX "good_defaults.yaml");
  const sp_dataset_spec *plain = dataset(pod, "plain");
  assert_false(plain->acceleration.present);
  assert_false(plain->acceleration.enabled);
  assert_int_equal(plain->mode, SP_MODE_READ);
  assert_false(plain->replication_enabled);
  assert_string_equal(plain->ready_state, "on_load");
  assert_null(plain->description);
  assert_null(plain->time_column);
  assert_null(plain->time_format);
  assert_int_equal(plain->params.count, 0);
  assert_accel_defaults(&plain->acceleration);

  const sp_dataset_spec *acc = dataset(pod, "accelerated");
  assert_true(acc->acceleration.present);
  assert_true(acc->acceleration.enabled);
  assert_accel_defaults(&acc->acceleration);

  const sp_dataset_spec *bare = dataset(pod, "bare_block");
  assert_true(bare->acceleration.present);
  assert_true(bare->acceleration.enabled);
  assert_accel_defaults(&bare->acceleration);

  const sp_dataset_spec *off = dataset(pod, "disabled");
  assert_true(off->acceleration.present);
  assert_false(off->acceleration.enabled);
  assert_string_equal(off->acceleration.engine, "sqlite");
  sp_pod_free(pod);
}

static void test_load_folder_and_sql_ref(void **state) {
  (void)state;
  sp_pod *pod = load_ok(FX "folder");
  assert_string_equal(pod->file, FX "folder/spicepod.yml");
  assert_string_equal(pod->dir, FX "folder");
  assert_string_equal(pod->name, "from_folder");
  assert_int_equal(pod->n_views, 1);
  assert_string_equal(pod->views[0].sql, "SELECT * FROM trips ORDER BY fare DESC LIMIT 10\n");
  sp_pod_free(pod);
}

static void test_load_missing(void **state) {
  (void)state;
  sp_error err = {0};
  sp_pod *pod = NULL;
  assert_int_equal(sp_pod_load(FX "views", NULL, &pod, &err), SP_ENOTFOUND);
  assert_string_equal(err.msg, "no spicepod.yaml or spicepod.yml in \"" FX "views\"");
  assert_int_equal(sp_pod_load(FX "nope.yaml", NULL, &pod, &err), SP_ENOTFOUND);
  assert_string_equal(err.msg,
                      "could not load spicepod: could not open \"" FX "nope.yaml\": No such file or directory");
  assert_null(pod);
}

/* ---- broken pods: exact messages ---- */

typedef struct bad_case {
  const char *file;
  sp_status code;
  const char *msg; /* after "fixtures/pods/<file>:" */
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_unknown_accel_key.yaml", SP_EINVAL,
     "9:7: unknown key \"refresh_intervall\" in acceleration of dataset \"trips\" (did you mean "
     "\"refresh_check_interval\"?)"},
    {"bad_unknown_dataset_key.yaml", SP_EINVAL,
     "5:5: unknown key \"form\" in dataset \"trips\" (did you mean \"from\"?)"},
    {"bad_from_type.yaml", SP_EINVAL, "6:5: dataset \"trips\": \"from\" must be a string"},
    {"bad_yaml_syntax.yaml", SP_EINVAL, /* line 7 is indented by three spaces */
     "7:4: invalid YAML: did not find expected '-' indicator (while parsing a block collection at line 5, column 3)"},
    {"bad_duplicate_dataset.yaml", SP_EINVAL, "8:5: duplicate dataset name \"Trips\" (lines 6 and 8)"},
    {"bad_read_write.yaml", SP_EINVAL, "7:5: dataset \"orders\": mode read_write requires replication.enabled: true"},
    {"bad_engine.yaml", SP_EINVAL,
     "8:7: acceleration of dataset \"orders\": unknown acceleration engine \"clickhouse\" (valid: arrow, duckdb, "
     "sqlite, postgres, cayenne, turso)"},
    {"bad_arrow_file.yaml", SP_EINVAL,
     "9:7: acceleration of dataset \"orders\": File mode not supported for Arrow engine"},
    {"bad_duration.yaml", SP_EINVAL,
     "8:7: acceleration of dataset \"orders\": invalid duration \"10 minutes\" for \"refresh_check_interval\" "
     "(expected e.g. 250ms, 10s, 5m, 1h, 2d, 1w or 1h30m)"},
    {"bad_param_null.yaml", SP_EINVAL,
     "9:7: dataset \"orders\": parameter \"pg_pass\" must be a string, number or boolean, not null"},
    {"bad_param_list.yaml", SP_EINVAL,
     "8:7: dataset \"orders\": parameter \"pg_host\" must be a string, number or boolean, not a list"},
    {"bad_version.yaml", SP_EINVAL, "1:1: unsupported spicepod version \"v3\" (expected v1beta1 or v1)"},
    {"bad_kind.yaml", SP_EINVAL, "2:1: \"kind\" must be Spicepod, got \"Dataset\""},
    {"bad_missing_name.yaml", SP_EINVAL, "1:1: missing required key \"name\" in spicepod"},
    {"bad_dataset_no_name.yaml", SP_EINVAL, "5:5: dataset #1: missing required key \"name\""},
    {"bad_secret_store.yaml", SP_ENOTSUP, "5:5: secret store \"keyring\" is not supported (supported: env)"},
    {"bad_unresolved_secret.yaml", SP_ENOTFOUND,
     "9:7: dataset \"orders\": parameter \"pg_pass\": secret \"${env:SPICEC_TEST_SURELY_UNSET_VAR}\" not found"},
    {"bad_duplicate_key.yaml", SP_EINVAL, "7:5: duplicate key \"from\" (first at line 5)"},
    {"bad_refresh_mode.yaml", SP_EINVAL,
     "8:7: acceleration of dataset \"orders\": \"refresh_mode\" must be one of full, append, changes, caching, got "
     "\"incremental\""},
    {"bad_retention.yaml", SP_EINVAL,
     "9:7: acceleration of dataset \"orders\": retention_check_enabled requires \"retention_check_interval\""},
    {"bad_view_both.yaml", SP_EINVAL, "7:5: view \"v\": write either \"sql\" or \"sql_ref\", not both"},
    {"bad_view_missing_sql_ref.yaml", SP_ENOTFOUND,
     "6:5: view \"v\": could not read sql_ref: could not open \"fixtures/pods/views/nope.sql\": No such file or "
     "directory"},
    {"bad_view_dataset_clash.yaml", SP_EINVAL, "8:5: view \"TRIPS\" has the name of a dataset (lines 6 and 8)"},
    {"bad_dataset_name.yaml", SP_EINVAL,
     "6:5: dataset name \"spice.public.trips\" is invalid: write \"table\" or \"schema.table\""},
    {"bad_bool.yaml", SP_EINVAL,
     "8:7: acceleration of dataset \"trips\": \"refresh_retry_enabled\" must be true or false, got \"maybe\""},
    {"bad_two_docs.yaml", SP_EINVAL, "5:1: a spicepod is one YAML document; found a second one"},
    {"bad_not_mapping.yaml", SP_EINVAL, "1:1: a spicepod must be a mapping of keys, not a list"},
    {"bad_empty.yaml", SP_EINVAL, "1:1: the spicepod is empty"},
    {"bad_time_format.yaml", SP_EINVAL,
     "7:5: dataset \"trips\": \"time_format\" must be one of timestamp, timestamptz, unix_seconds, unix_millis, "
     "ISO8601, date, got \"epoch\""},
    {"bad_replication_key.yaml", SP_EINVAL,
     "8:7: unknown key \"enable\" in replication of dataset \"trips\" (did you mean \"enabled\"?)"},
    {"bad_datasets_type.yaml", SP_EINVAL, "4:1: \"datasets\" must be a list, not a mapping"},
    {"bad_retry_attempts.yaml", SP_EINVAL,
     "8:7: acceleration of dataset \"trips\": \"refresh_retry_max_attempts\" must be an integer, got \"lots\""},
    {"bad_dataset_ref.yaml", SP_ENOTSUP,
     "5:5: dataset #1: \"ref\" entries are not supported; write the dataset inline"},
    {"bad_duplicate_view.yaml", SP_EINVAL, "8:5: duplicate view name \"V\" (lines 5 and 8)"},
};

static void test_broken_pods(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case *bc = &bad_cases[i];
    char path[256], want[1024];
    snprintf(path, sizeof path, FX "%s", bc->file);
    snprintf(want, sizeof want, "%s:%s", path, bc->msg);
    sp_error err = {0};
    sp_pod *pod = NULL;
    int rc = sp_pod_load(path, NULL, &pod, &err);
    if (rc != (int)bc->code || strcmp(err.msg, want) != 0)
      fail_msg("%s:\n  got  %s %s\n  want %s %s", bc->file, sp_status_name((sp_status)rc), err.msg,
               sp_status_name(bc->code), want);
    assert_null(pod);
  }
}

/* Messages for pods given as strings (the pod's folder is then the current one). */
static void test_broken_strings(void **state) {
  (void)state;
  static const struct {
    const char *yaml, *msg;
  } cases[] = {
      {"views:\n  - name: v\n    sql_ref: nope.sql\n",
       "spicepod.yaml:6:5: view \"v\": could not read sql_ref: could not open \"nope.sql\": No such file or directory"},
      {"views:\n  - name: v\n    description: no sql\n",
       "spicepod.yaml:5:5: view \"v\": one of \"sql\" or \"sql_ref\" is required"},
      {"datasets:\n  - from: x\n    name: d\n    mode: rw\n",
       "spicepod.yaml:7:5: dataset \"d\": \"mode\" must be one of read, read_write, got \"rw\""},
      {"datasets:\n  - from: x\n    name: d\n    params: [a]\n",
       "spicepod.yaml:7:5: dataset \"d\": \"params\" must be a mapping"},
      {"datasets:\n  - from: x\n    name: d\n    acceleration:\n      retention_check_enabled: true\n"
       "      retention_check_interval: 1h\n",
       "spicepod.yaml:8:7: acceleration of dataset \"d\": retention_check_enabled requires \"retention_period\" or "
       "\"retention_sql\""},
      {"datasets:\n  - from: x\n    name: d\n    params:\n      k: {a: 1}\n",
       "spicepod.yaml:8:7: dataset \"d\": parameter \"k\" must be a string, number or boolean, not a mapping"},
      {"datasets:\n  - from: x\n    name: d\n    params:\n      k: ${vault:x}\n",
       "spicepod.yaml:8:7: dataset \"d\": parameter \"k\": unknown secret store \"vault\" in \"${vault:x}\""},
      {"runtime:\n  shutdown_timeout: soon\n", "spicepod.yaml:5:3: runtime: invalid duration \"soon\" for "
                                               "\"shutdown_timeout\" (expected e.g. 250ms, 10s, 5m, 1h, "
                                               "2d, 1w or 1h30m)"},
      {"runtime:\n  query:\n    timeout: soon\n", "spicepod.yaml:6:5: runtime.query: invalid duration \"soon\" for "
                                                   "\"timeout\" (expected e.g. 250ms, 10s, 5m, 1h, 2d, 1w or 1h30m)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "version: v1\nkind: Spicepod\nname: s\n%s", cases[i].yaml);
    sp_error err = {0};
    sp_pod *pod = NULL;
    assert_int_not_equal(sp_pod_parse(yaml, strlen(yaml), NULL, NULL, &pod, &err), SP_OK);
    if (strcmp(err.msg, cases[i].msg) != 0) fail_msg("case %zu:\n  got  %s\n  want %s", i, err.msg, cases[i].msg);
    assert_null(pod);
  }
}

/* Every truncation of a good pod either parses or fails with a positioned message; none crashes or leaks
 * (run under ASan in CI). */
static void test_truncations_fail_cleanly(void **state) {
  (void)state;
  FILE *f = fopen(FX "good_full.yaml", "rb");
  assert_non_null(f);
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  for (size_t len = 0; len < n; len += 7) {
    sp_error err = {0};
    sp_pod *pod = NULL;
    int rc = sp_pod_parse(buf, len, "t.yaml", NULL, &pod, &err);
    if (rc == SP_OK) {
      sp_pod_free(pod);
    } else {
      assert_null(pod);
      assert_true(strncmp(err.msg, "t.yaml:", 7) == 0);
    }
  }
}

/* ---- warnings ---- */

static void test_unknown_top_level_key_is_a_warning(void **state) {
  (void)state;
  capture cap;
  capture_begin(&cap);
  sp_pod *pod = parse_ok("version: v1\nkind: Spicepod\nname: w\ndatset: []\nruntime:\n  foo: 1\n", NULL);
  char *log = capture_end(&cap);
  assert_non_null(
      strstr(log, "spicepod.yaml:4:1: ignoring unknown key \"datset\" in spicepod (did you mean \"datasets\"?)"));
  assert_non_null(strstr(log, "spicepod.yaml:6:3: ignoring unknown key \"foo\" in runtime"));
  assert_int_equal(pod->n_datasets, 0);
  free(log);
  sp_pod_free(pod);
}

/* ---- param values, type actions, runtime caching ---- */

static void test_param_values_and_type_action(void **state) {
  (void)state;
  const char *yaml = "version: v1\nkind: Spicepod\nname: p\n"
                     "runtime:\n  caching:\n    sql_results:\n      enabled: false\n"
                     "datasets:\n"
                     "  - from: postgres:t\n"
                     "    name: t\n"
                     "    invalid_type_action: WARN\n"
                     "    params:\n"
                     "      hex: 0x1F\n"
                     "      oct: 0o17\n"
                     "      quoted: \"0x1F\"\n"
                     "      float: 1.50\n"
                     "      neg: -3\n"
                     "      yes_word: yes\n"
                     "      off: FALSE\n"
                     "      unsupported_type_action: error\n";
  sp_pod *pod = parse_ok(yaml, NULL);
  const sp_params *p = &pod->datasets[0].params;
  assert_string_equal(sp_params_get(p, "hex"), "31");
  assert_string_equal(sp_params_get(p, "oct"), "15");
  assert_string_equal(sp_params_get(p, "quoted"), "0x1F");
  assert_string_equal(sp_params_get(p, "float"), "1.50");
  assert_string_equal(sp_params_get(p, "neg"), "-3");
  assert_string_equal(sp_params_get(p, "yes_word"), "yes"); /* YAML 1.2: a string */
  assert_string_equal(sp_params_get(p, "off"), "false");
  /* the dataset-level key wins over the one in params, and is stored once */
  assert_string_equal(sp_params_get(p, "unsupported_type_action"), "warn");
  size_t n = 0;
  for (size_t i = 0; i < p->count; i++)
    n += strcmp(p->items[i].key, "unsupported_type_action") == 0;
  assert_int_equal(n, 1);
  /* caching.sql_results.enabled stands in for results_cache.enabled */
  assert_false(pod->runtime.results_cache_enabled);
  sp_pod_free(pod);
}

/* ---- from splitting ---- */

static void test_from_splitting(void **state) {
  (void)state;
  static const struct {
    const char *from, *connector, *path;
  } cases[] = {
      {"file:data/trips.parquet", "file", "data/trips.parquet"},
      {"file:/abs/trips.parquet", "file", "/abs/trips.parquet"},
      {"file:///abs/trips.parquet", "file", "/abs/trips.parquet"},
      {"file://relative/trips.csv", "file", "relative/trips.csv"},
      {"postgres:public.orders", "postgres", "public.orders"},
      {"duckdb:read_csv('x.csv')", "duckdb", "read_csv('x.csv')"},
      {"mysql:db.t:with:colons", "mysql", "db.t:with:colons"},
      {"s3://bucket/prefix/", "s3", "s3://bucket/prefix/"},
      {"https://example.com/a.parquet", "https", "https://example.com/a.parquet"},
      {"http://example.com/a.csv", "http", "http://example.com/a.csv"},
      {"spice.ai/eth.recent_blocks", "spice.ai", "spice.ai/eth.recent_blocks"},
      {"spice.ai:eth.recent_blocks", "spice.ai", "eth.recent_blocks"},
      {"sink", "sink", ""},
      {"", "sink", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char yaml[512];
    snprintf(yaml, sizeof yaml, "version: v1\nkind: Spicepod\nname: f\ndatasets:\n  - from: \"%s\"\n    name: d\n",
             cases[i].from);
    sp_pod *pod = parse_ok(yaml, NULL);
    assert_string_equal(pod->datasets[0].from, cases[i].from);
    assert_string_equal(pod->datasets[0].connector, cases[i].connector);
    assert_string_equal(pod->datasets[0].path, cases[i].path);
    sp_pod_free(pod);
  }
  /* `from:` with nothing after it is a sink too */
  sp_pod *pod = parse_ok("version: v1\nkind: Spicepod\nname: f\ndatasets:\n  - from:\n    name: d\n", NULL);
  assert_string_equal(pod->datasets[0].connector, "sink");
  assert_string_equal(pod->datasets[0].from, "");
  sp_pod_free(pod);
}

/* ---- secrets in params, JSON as written ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int make_tmpdir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/spicec_pod_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *secret_pod = "version: v1\nkind: Spicepod\nname: s\n"
                                "datasets:\n"
                                "  - from: postgres:orders\n"
                                "    name: orders\n"
                                "    params:\n"
                                "      pg_host: ${env:SPICEC_POD_TEST_HOST}:5432\n"
                                "      pg_pass: \"${ secrets : pod_test_pass }\"\n"
                                "    acceleration:\n"
                                "      params:\n"
                                "        duckdb_file: ${env:pod_test_file}\n";

static void test_secrets_resolved_in_params_not_in_json(void **state) {
  (void)state;
  write_file(".env", "POD_TEST_PASS=from-dotenv\nPOD_TEST_FILE=/tmp/x.db\n");
  setenv("SPICEC_POD_TEST_HOST", "db.internal", 1);
  sp_secrets *s = NULL;
  assert_int_equal(sp_secrets_create(tmpdir, &s, NULL), SP_OK);
  sp_pod *pod = parse_ok(secret_pod, s);
  const sp_dataset_spec *d = &pod->datasets[0];
  assert_string_equal(sp_params_get(&d->params, "pg_host"), "db.internal:5432");
  assert_string_equal(sp_params_get(&d->params, "pg_pass"), "from-dotenv");
  assert_string_equal(sp_params_get(&d->acceleration.params, "duckdb_file"), "/tmp/x.db");
  assert_null(strstr(pod->json, "from-dotenv"));
  assert_null(strstr(pod->json, "db.internal"));
  json_t *j = json_loads(pod->json, 0, NULL);
  assert_non_null(j);
  json_t *params = json_object_get(json_array_get(json_object_get(j, "datasets"), 0), "params");
  assert_string_equal(json_string_value(json_object_get(params, "pg_pass")), "${ secrets : pod_test_pass }");
  json_decref(j);
  sp_pod_free(pod);
  sp_secrets_destroy(s);
  unsetenv("SPICEC_POD_TEST_HOST");
}

static void test_secrets_section_custom_store(void **state) {
  (void)state;
  write_file("team.env", "TEAM_TOKEN=t0ken\n");
  sp_secrets *s = NULL;
  assert_int_equal(sp_secrets_create(tmpdir, &s, NULL), SP_OK);
  const char *yaml = "version: v1\nkind: Spicepod\nname: s\n"
                     "secrets:\n  - from: env\n    name: team\n    params:\n      file_path: team.env\n"
                     "datasets:\n  - from: sink\n    name: d\n    params:\n      token: ${team:team_token}\n";
  sp_pod *pod = parse_ok(yaml, s);
  assert_string_equal(sp_params_get(&pod->datasets[0].params, "token"), "t0ken");
  sp_pod_free(pod);
  /* the pod listed its stores, so the default `env` store is gone */
  sp_error err = {0};
  char *out = NULL;
  assert_int_equal(sp_secrets_interpolate(s, "${env:team_token}", &out, &err), SP_ENOTFOUND);
  assert_string_equal(err.msg, "unknown secret store \"env\" in \"${env:team_token}\"");
  sp_secrets_destroy(s);
}

/* ---- JSON ---- */

static void test_json_keeps_values_as_written(void **state) {
  (void)state;
  sp_pod *pod = load_ok(FX "good_full.yaml");
  json_error_t jerr;
  json_t *j = json_loads(pod->json, 0, &jerr);
  assert_non_null(j);
  json_t *d = json_array_get(json_object_get(j, "datasets"), 0);
  assert_string_equal(json_string_value(json_object_get(d, "from")), "postgres:public.trips");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "params"), "pg_port")), 5432);
  assert_true(json_is_true(json_object_get(json_object_get(d, "params"), "verbose")));
  json_t *a = json_object_get(d, "acceleration");
  assert_string_equal(json_string_value(json_object_get(a, "engine")), "PostgreSQL");
  assert_string_equal(json_string_value(json_object_get(a, "refresh_check_interval")), "10m");
  assert_int_equal(json_array_size(json_object_get(a, "primary_key")), 2);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "owner")), "data-team");
  assert_int_equal(json_array_size(json_object_get(j, "views")), 1);
  json_decref(j);
  sp_pod_free(pod);
}

static void test_alias_bomb_is_refused(void **state) {
  (void)state;
  const char *yaml = "version: v1\nkind: Spicepod\nname: b\n"
                     "metadata:\n"
                     "  a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                     "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
  sp_error err = {0};
  sp_pod *pod = NULL;
  assert_int_equal(sp_pod_parse(yaml, strlen(yaml), "bomb.yaml", NULL, &pod, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "the spicepod expands to more than 200000 values (check its aliases)"));
  assert_true(strncmp(err.msg, "bomb.yaml:", 10) == 0);
}

/* ---- refresh modes ---- */

static void test_refresh_mode_names(void **state) {
  (void)state;
  sp_refresh_mode m;
  static const char *const names[] = {"full", "append", "changes", "disabled", "caching"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(sp_refresh_mode_parse(names[i], &m), SP_OK);
    assert_string_equal(sp_refresh_mode_name(m), names[i]);
  }
  assert_int_equal(sp_refresh_mode_parse("APPEND", &m), SP_OK);
  assert_int_equal(m, SP_REFRESH_APPEND);
  assert_int_equal(sp_refresh_mode_parse("incremental", &m), SP_EINVAL);
}

/* ---- threads ---- */

static void *parse_many(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; i++) {
    sp_error err = {0};
    sp_pod *pod = NULL;
    if (sp_pod_load(FX "good_full.yaml", NULL, &pod, &err) != SP_OK) return (void *)1;
    int bad = pod->n_datasets != 1 || strcmp(pod->datasets[0].acceleration.engine, "postgres") != 0;
    sp_pod_free(pod);
    if (bad) return (void *)1;
  }
  return NULL;
}

static void test_parse_is_thread_safe(void **state) {
  (void)state;
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, parse_many, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    assert_null(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_pod_every_field),
      cmocka_unit_test(test_minimal_pod),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_load_folder_and_sql_ref),
      cmocka_unit_test(test_load_missing),
      cmocka_unit_test(test_broken_pods),
      cmocka_unit_test(test_broken_strings),
      cmocka_unit_test(test_truncations_fail_cleanly),
      cmocka_unit_test(test_unknown_top_level_key_is_a_warning),
      cmocka_unit_test(test_param_values_and_type_action),
      cmocka_unit_test(test_from_splitting),
      cmocka_unit_test(test_secrets_resolved_in_params_not_in_json),
      cmocka_unit_test(test_secrets_section_custom_store),
      cmocka_unit_test(test_json_keeps_values_as_written),
      cmocka_unit_test(test_alias_bomb_is_refused),
      cmocka_unit_test(test_refresh_mode_names),
      cmocka_unit_test(test_parse_is_thread_safe),
  };
  return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
