/* SPDX-License-Identifier: Apache-2.0
 *
 * The helpers of the http and s3 connectors, without a network: URLs shown without credentials, SigV4
 * percent-encoding, and a download read by the file connector (projection, pushed conditions with their
 * fallback, messages naming the URL, the folder removed with the last reference).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "connectors/http_util.h"
#include "spice/arrow.h"

extern const sp_connector_module sp_connector_http;

static void test_url_shown(void **state) {
  (void)state;
  char out[256];
  sp__url_shown("https://bob:s3cret@example.com:8443/a/b.csv?token=x#frag", out, sizeof out);
  assert_string_equal(out, "https://example.com:8443/a/b.csv");
  sp__url_shown("http://example.com/p@th/x.parquet", out, sizeof out);
  assert_string_equal(out, "http://example.com/p@th/x.parquet");
  sp__url_shown("http://u:p@h", out, sizeof out);
  assert_string_equal(out, "http://h");
}

static void test_url_encode(void **state) {
  (void)state;
  sp_buf b = {0};
  assert_int_equal(sp__url_encode(&b, "a b/c+d=é~_.-", true), SP_OK);
  assert_string_equal(sp_buf_cstr(&b), "a%20b/c%2Bd%3D%C3%A9~_.-");
  b.len = 0;
  assert_int_equal(sp__url_encode(&b, "x/y", false), SP_OK);
  assert_string_equal(sp_buf_cstr(&b), "x%2Fy");
  sp_buf_free(&b);
}

typedef struct outer {
  sp_dataset_spec spec;
  sp_connector conn;
} outer;

static void outer_init(outer *o) {
  memset(o, 0, sizeof *o);
  o->spec.name = "trips";
  o->spec.connector = "http";
  o->spec.path = "http://example.com/trips.csv";
  o->conn.module = &sp_connector_http;
  o->conn.dataset = &o->spec;
  sp_params raw = {0};
  assert_int_equal(sp_params_validate(sp_connector_http.params, "http", &raw, NULL, "dataset", &o->conn.params, NULL), SP_OK);
}

/* A download holding trips.csv with ids 1..n. */
static sp_download *make_download(int n) {
  sp_download *d;
  assert_int_equal(sp__download_new("test", &d, NULL), SP_OK);
  snprintf(d->path, sizeof d->path, "%s/trips.csv", d->dir);
  FILE *f = fopen(d->path, "w");
  assert_non_null(f);
  fprintf(f, "id,name\n");
  for (int i = 1; i <= n; i++) fprintf(f, "%d,n%d\n", i, i);
  fclose(f);
  return d;
}

static int64_t drain(struct ArrowArrayStream *s, int64_t *ncols) {
  struct ArrowSchema schema;
  assert_int_equal(s->get_schema(s, &schema), 0);
  *ncols = schema.n_children;
  schema.release(&schema);
  int64_t rows = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s->get_next(s, &a), 0);
    if (a.release == NULL) break;
    rows += a.length;
    a.release(&a);
  }
  s->release(s);
  return rows;
}

static void test_read_download(void **state) {
  (void)state;
  outer o;
  outer_init(&o);
  sp_download *d = make_download(100);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", d->dir);
  struct ArrowArrayStream s;
  sp_error err = {0};
  int64_t ncols;
  const char *cols[] = {"id"};
  /* The conditions are applied while the file is read. */
  sp_scan pushed = {.columns = cols, .n_columns = 1, .limit = -1,
                    .filter_query = "SELECT * FROM \"trips\" WHERE (\"id\" > 90) AND (\"name\" <> 'n95')"};
  assert_int_equal(sp__read_download(&o.conn, sp__download_ref(d), "http://x/trips.csv", &pushed, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &ncols), 9);
  assert_int_equal(ncols, 1);
  /* Conditions the reader cannot bind are dropped (the engine applies the WHERE again). */
  sp_scan bad = {.columns = cols, .n_columns = 1, .limit = 7, .filter_query = "SELECT * FROM \"trips\" WHERE nope"};
  assert_int_equal(sp__read_download(&o.conn, sp__download_ref(d), "http://x/trips.csv", &bad, &s, &err), SP_OK);
  assert_int_equal(drain(&s, &ncols), 7);
  /* Every row; the folder lives while a stream reads it, and goes with the last reference. */
  assert_int_equal(sp__read_download(&o.conn, d, "http://x/trips.csv", NULL, &s, &err), SP_OK);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(drain(&s, &ncols), 100);
  assert_int_equal(ncols, 2);
  assert_int_not_equal(stat(dir, &st), 0);
  sp_params_free(&o.conn.params);
}

static void test_read_error_names_the_url(void **state) {
  (void)state;
  outer o;
  outer_init(&o);
  sp_download *d;
  assert_int_equal(sp__download_new("test", &d, NULL), SP_OK);
  snprintf(d->path, sizeof d->path, "%s/trips.parquet", d->dir);
  FILE *f = fopen(d->path, "w");
  fputs("<html>not parquet</html>", f);
  fclose(f);
  struct ArrowArrayStream s;
  sp_error err = {0};
  assert_int_not_equal(sp__read_download(&o.conn, d, "http://example.com/trips.parquet", NULL, &s, &err), SP_OK);
  assert_non_null(strstr(err.msg, "http://example.com/trips.parquet"));
  assert_null(strstr(err.msg, "spicec-test-"));
  sp_params_free(&o.conn.params);
}

static void test_cache(void **state) {
  (void)state;
  sp_download_cache c;
  sp__download_cache_init(&c);
  assert_null(sp__download_cache_get(&c));
  sp_download *a = make_download(1), *b = make_download(2);
  char adir[4096];
  snprintf(adir, sizeof adir, "%s", a->dir);
  sp__download_cache_put(&c, a);
  sp_download *got = sp__download_cache_get(&c);
  assert_ptr_equal(got, a);
  sp__download_unref(got);
  sp__download_unref(a); /* the cache still holds it */
  struct stat st;
  assert_int_equal(stat(adir, &st), 0);
  sp__download_cache_put(&c, b); /* replaces a: its folder goes */
  assert_int_not_equal(stat(adir, &st), 0);
  sp__download_unref(b);
  sp__download_cache_destroy(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_shown),
      cmocka_unit_test(test_url_encode),
      cmocka_unit_test(test_read_download),
      cmocka_unit_test(test_read_error_names_the_url),
      cmocka_unit_test(test_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
