/* SPDX-License-Identifier: Apache-2.0
 *
 * The results cache: the SQL normaliser and key (what must and must not share a key, what is not cacheable)
 * and the LRU (hits, staleness by data version and TTL, eviction order, the byte bound, the item limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/results_cache.h"

/* The normal form of sql as a malloc'd string; *cacheable receives the verdict. */
static char *norm(const char *sql, bool *cacheable) {
  sp_buf b = {0};
  bool c = false;
  assert_int_equal(sp_sql_normalize(sql, strlen(sql), &b, &c), SP_OK);
  char *s = strndup(b.data ? b.data : "", b.len);
  sp_buf_free(&b);
  if (cacheable) *cacheable = c;
  return s;
}

static void expect_norm(const char *sql, const char *want, bool want_cacheable) {
  bool c;
  char *got = norm(sql, &c);
  if (strcmp(got, want) != 0) fail_msg("normalise(%s) = [%s], want [%s]", sql, got, want);
  if (c != want_cacheable) fail_msg("normalise(%s): cacheable %d, want %d", sql, c, want_cacheable);
  free(got);
}

static void expect_same(const char *a, const char *b) {
  char *x = norm(a, NULL), *y = norm(b, NULL);
  if (strcmp(x, y) != 0) fail_msg("[%s] and [%s] should share a key: [%s] vs [%s]", a, b, x, y);
  free(x);
  free(y);
}

static void expect_different(const char *a, const char *b) {
  char *x = norm(a, NULL), *y = norm(b, NULL);
  if (strcmp(x, y) == 0) fail_msg("[%s] and [%s] must not share a key: both [%s]", a, b, x);
  free(x);
  free(y);
}

static void test_spacing_and_keywords(void **state) {
  (void)state;
  expect_norm("  SELECT  *\n\tFROM   trips  WHERE id = 1 ", "select * from trips where id = 1", true);
  expect_same("SELECT * FROM t", "select  *  from t");
  expect_same("Select Count( * ) From t Group By k Order By k", "select count(*) from t group by k order by k");
  expect_same("SELECT a , b FROM t", "SELECT a,b FROM t");
  expect_same("SELECT 1 /* note */ FROM t", "SELECT 1 FROM t");
  expect_same("SELECT 1 -- trailing\nFROM t", "SELECT 1 FROM t");
  expect_same("WITH x AS (SELECT 1) SELECT * FROM x", "with x as (select 1) select * from x");
  expect_norm("SELECT x FROM t LEFT JOIN u ON t.k = u.k", "select x from t left join u on t.k = u.k", true);
  expect_norm("SELECT Sum (Id), CAST(x AS Decimal(10, 2)) FROM s.Fn(1)",
              "select sum(Id),cast(x as Decimal(10,2)) from s.Fn(1)", true);
}

static void test_meaning_is_kept(void **state) {
  (void)state;
  /* Literals and quoted identifiers are byte for byte. */
  expect_different("SELECT 'A  B'", "SELECT 'a b'");
  expect_different("SELECT 'it''s  x'", "SELECT 'it''s x'");
  expect_different("SELECT \"Foo\" FROM t", "SELECT \"foo\" FROM t");
  expect_different("SELECT \"a  b\" FROM t", "SELECT \"a b\" FROM t");
  expect_different("SELECT E'a\\'  b'", "SELECT E'a\\' b'");
  expect_different("SELECT $$a  b$$", "SELECT $$a b$$");
  expect_different("SELECT $t$a  $ b$t$", "SELECT $t$a $ b$t$");
  /* Unquoted identifiers keep their case (it names result columns). */
  expect_different("SELECT Foo FROM t", "SELECT foo FROM t");
  expect_different("SELECT 1 AS Select", "SELECT 1 AS select");
  expect_different("SELECT t.Order FROM t", "SELECT t.order FROM t");
  /* A line comment ends at the line end, not at the end of the key. */
  expect_different("SELECT 1 -- c\nFROM t", "SELECT 1 -- c FROM t");
  expect_norm("SELECT 1 -- c FROM t", "select 1", true);
  /* Operators stay apart: "- -1" is not a comment. */
  expect_different("SELECT 2 - -1", "SELECT 2 --1");
  expect_norm("SELECT $1, $name", "select $1,$name", true);
  /* Nested block comments. */
  expect_norm("SELECT /* a /* b */ c */ 1", "select 1", true);
  /* Unterminated literals are copied to the end. */
  expect_norm("SELECT 'abc  ", "select 'abc  ", true);
}

static void test_cacheable(void **state) {
  (void)state;
  bool c;
  const char *no[] = {"INSERT INTO t VALUES (1)", "select random()", "SELECT now()", "select * from read_csv('x.csv')",
                      "SELECT * FROM duckdb_tables()", "PRAGMA version", "SET x = 1", "CREATE TABLE x (a INT)",
                      "", "  -- only a comment", "SELECT current_timestamp", "select nextval('s')",
                      "SELECT * FROM information_schema.tables", "EXPLAIN SELECT 1", "DELETE FROM t",
                      "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    free(norm(no[i], &c));
    if (c) fail_msg("[%s] must not be cacheable", no[i]);
  }
  const char *yes[] = {"SELECT 1", "select * from t where x = 'now()'", "SELECT \"random\" FROM t",
                       "WITH a AS (SELECT 1) SELECT * FROM a", "FROM t", "VALUES (1)", "select count(*) from trips", "(SELECT 1)"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    free(norm(yes[i], &c));
    if (!c) fail_msg("[%s] should be cacheable", yes[i]);
  }
}

static void test_may_write(void **state) {
  (void)state;
  const char *writes[] = {"INSERT INTO t VALUES (1)", "with x as (select 1) insert into t select * from x",
                          "  /* c */ DELETE FROM t", "CREATE TABLE x (a INT)", "copy t to 'x.csv'"};
  for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
    if (!sp_sql_may_write(writes[i], strlen(writes[i]))) fail_msg("[%s] may write", writes[i]);
  const char *reads[] = {"SELECT 1", "select random()", "SELECT 'insert into t' AS s", "SELECT \"delete\" FROM t",
                         "SELECT 1 -- update later", ""};
  for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
    if (sp_sql_may_write(reads[i], strlen(reads[i]))) fail_msg("[%s] does not write", reads[i]);
}

static char *key_of(const char *sql, const sp_value *p, size_t n, int fmt, bool *cacheable) {
  sp_buf b = {0};
  assert_int_equal(sp_cache_key(sql, p, n, fmt, &b, cacheable), SP_OK);
  char *s = malloc(b.len + sizeof(size_t));
  memcpy(s, &b.len, sizeof(size_t)); /* length first: keys hold NULs */
  memcpy(s + sizeof(size_t), b.data, b.len);
  sp_buf_free(&b);
  return s;
}

static bool keys_equal(const char *a, const char *b) {
  size_t la, lb;
  memcpy(&la, a, sizeof la);
  memcpy(&lb, b, sizeof lb);
  return la == lb && memcmp(a + sizeof la, b + sizeof lb, la) == 0;
}

static void test_key_parameters_and_format(void **state) {
  (void)state;
  bool c;
  sp_value p1[] = {{.type = SP_VALUE_STRING, .v.s = "a"}, {.type = SP_VALUE_STRING, .v.s = "b"}};
  sp_value p2[] = {{.type = SP_VALUE_STRING, .v.s = "a\x1f" "s1:b"}};
  sp_value p3[] = {{.type = SP_VALUE_INT, .v.i = 1}};
  sp_value p4[] = {{.type = SP_VALUE_STRING, .v.s = "1"}};
  sp_value p5[] = {{.name = "id", .type = SP_VALUE_INT, .v.i = 1}};
  char *k[8];
  k[0] = key_of("SELECT $1, $2", p1, 2, 0, &c);
  k[1] = key_of("select $1,$2", p1, 2, 0, &c);
  k[2] = key_of("SELECT $1, $2", p2, 1, 0, &c);
  k[3] = key_of("SELECT $1", p3, 1, 0, &c);
  k[4] = key_of("SELECT $1", p4, 1, 0, &c);
  k[5] = key_of("SELECT $1", p3, 1, 1, &c);
  k[6] = key_of("SELECT $1", p5, 1, 0, &c);
  k[7] = key_of("SELECT $1", NULL, 0, 0, &c);
  assert_true(keys_equal(k[0], k[1]));
  for (int i = 1; i < 8; i++)
    for (int j = i + 1; j < 8; j++)
      if (keys_equal(k[i], k[j])) fail_msg("keys %d and %d must differ", i, j);
  for (int i = 0; i < 8; i++) free(k[i]);
}

/* ---- LRU ------------------------------------------------------------------------------------------------- */

static bool get(sp_rcache *c, const char *key, uint64_t version, int64_t now, char *out, size_t cap) {
  sp_buf b = {0};
  bool hit = sp_rcache_get(c, key, strlen(key), version, now, &b);
  if (hit) snprintf(out, cap, "%.*s", (int)b.len, b.data);
  sp_buf_free(&b);
  return hit;
}

static void put(sp_rcache *c, const char *key, uint64_t version, int64_t now, const char *body) {
  assert_int_equal(sp_rcache_put(c, key, strlen(key), version, now, body, strlen(body)), SP_OK);
}

static void test_lru_hit_version_ttl(void **state) {
  (void)state;
  sp_rcache *c;
  assert_int_equal(sp_rcache_create(1 << 20, 1000, &c, NULL), SP_OK);
  char out[64];
  assert_false(get(c, "k", 1, 0, out, sizeof out));
  put(c, "k", 1, 0, "[1]");
  assert_true(get(c, "k", 1, 999, out, sizeof out));
  assert_string_equal(out, "[1]");
  /* The data version moved: the entry is gone for good, even for a reader with the old version. */
  assert_false(get(c, "k", 2, 10, out, sizeof out));
  assert_false(get(c, "k", 1, 10, out, sizeof out));
  uint64_t items, bytes;
  sp_rcache_stats(c, &items, &bytes);
  assert_int_equal(items, 0);
  assert_int_equal(bytes, 0);
  /* TTL. */
  put(c, "k", 2, 5000, "[2]");
  assert_true(get(c, "k", 2, 5999, out, sizeof out));
  assert_false(get(c, "k", 2, 6000, out, sizeof out));
  /* Replacing a key keeps one entry. */
  put(c, "k", 2, 7000, "[3]");
  put(c, "k", 2, 7000, "[4]");
  sp_rcache_stats(c, &items, &bytes);
  assert_int_equal(items, 1);
  assert_true(get(c, "k", 2, 7000, out, sizeof out));
  assert_string_equal(out, "[4]");
  sp_rcache_destroy(c);
}

static void test_lru_eviction_and_bounds(void **state) {
  (void)state;
  sp_rcache *c;
  char body[500];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = '\0';
  /* Room for four entries of ~600 bytes (body and overhead); the item limit is a quarter, 700. */
  assert_int_equal(sp_rcache_create(2800, 0, &c, NULL), SP_OK);
  put(c, "a", 1, 0, body);
  put(c, "b", 1, 0, body);
  put(c, "c", 1, 0, body);
  put(c, "d", 1, 0, body);
  char out[1100];
  assert_true(get(c, "a", 1, 0, out, sizeof out)); /* a is now the most recent: b goes first */
  put(c, "e", 1, 0, body);
  uint64_t items, bytes;
  sp_rcache_stats(c, &items, &bytes);
  assert_true(bytes <= 2800);
  assert_int_equal(items, 4);
  assert_false(get(c, "b", 1, 0, out, sizeof out));
  assert_true(get(c, "a", 1, 0, out, sizeof out));
  assert_true(get(c, "c", 1, 0, out, sizeof out));
  assert_true(get(c, "e", 1, 0, out, sizeof out));
  /* Larger than the item limit: not stored, and nothing was evicted for it. */
  char big[800];
  memset(big, 'y', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  put(c, "big", 1, 0, big);
  assert_false(get(c, "big", 1, 0, out, sizeof out));
  sp_rcache_stats(c, &items, &bytes);
  assert_int_equal(items, 4);
  sp_rcache_destroy(c);
}

static void test_lru_many_keys(void **state) {
  (void)state;
  sp_rcache *c;
  assert_int_equal(sp_rcache_create(64 << 20, 0, &c, NULL), SP_OK);
  char key[32], val[32], out[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(key, sizeof key, "select %d", i);
    snprintf(val, sizeof val, "[%d]", i);
    put(c, key, 7, 0, val);
  }
  for (int i = 0; i < 20000; i += 997) {
    snprintf(key, sizeof key, "select %d", i);
    snprintf(val, sizeof val, "[%d]", i);
    assert_true(get(c, key, 7, 0, out, sizeof out));
    assert_string_equal(out, val);
  }
  uint64_t items, bytes;
  sp_rcache_stats(c, &items, &bytes);
  assert_int_equal(items, 20000);
  sp_rcache_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spacing_and_keywords), cmocka_unit_test(test_meaning_is_kept),
      cmocka_unit_test(test_cacheable),            cmocka_unit_test(test_key_parameters_and_format),
      cmocka_unit_test(test_may_write),
      cmocka_unit_test(test_lru_hit_version_ttl),  cmocka_unit_test(test_lru_eviction_and_bounds),
      cmocka_unit_test(test_lru_many_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
