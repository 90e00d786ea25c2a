/* SPDX-License-Identifier: Apache-2.0
 *
 * The Parquet footer reader, the read planner and the copies a ranged read hands to DuckDB, on files DuckDB
 * writes: the footer agrees with DuckDB's parquet_metadata(); a projection needs only its columns' chunks;
 * statistics rule out exactly the row groups that cannot match (and keep those they cannot judge); a copy
 * holding only the planned ranges answers every query of its plan as the whole file does, while a column it
 * lacks fails loudly and a row group it drops cannot be reached; a rewritten footer parses back; malformed
 * footers are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <duckdb.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/parquet_footer.h"
#include "connectors/parquet_plan.h"
#include "connectors/ranged_read.h"
#include "spice/duckdb_util.h"

enum { ROWS = 100000, RG_ROWS = 20480 }; /* DuckDB rounds ROW_GROUP_SIZE 20000 up to 10 vectors */

static char dir[256], file[300];
static duckdb_database db;
static duckdb_connection conn;

static void sql_ok(const char *sql) {
  duckdb_result r;
  if (duckdb_query(conn, sql, &r) == DuckDBError) fail_msg("%s: %s", sql, duckdb_result_error(&r));
  duckdb_destroy_result(&r);
}

/* The one value a query returns, as text (malloc'd), or NULL when it fails. */
static char *sql_text(const char *sql) {
  duckdb_result r;
  if (duckdb_query(conn, sql, &r) == DuckDBError) {
    duckdb_destroy_result(&r);
    return NULL;
  }
  char *v = duckdb_value_varchar(&r, 0, 0);
  char *out = strdup(v ? v : "NULL");
  duckdb_free(v);
  duckdb_destroy_result(&r);
  return out;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sp_pqf_XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/t.parquet", dir);
  assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
  assert_int_equal(duckdb_connect(db, &conn), DuckDBSuccess);
  char sql[1200];
  snprintf(sql, sizeof sql,
           "COPY (SELECT i AS id, (i * 1.5)::DOUBLE AS fare, 'name' || (i %% 100) AS name, (i %% 7)::INTEGER AS k, "
           "DATE '2020-01-01' + (i // 1000)::INTEGER AS d, CASE WHEN i >= 40960 THEN NULL ELSE i END AS maybe, "
           "{'a': i, 'b': 'x' || i} AS s, repeat('p', 30) || i AS pad FROM range(%d) t(i)) "
           "TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 20000)",
           ROWS, file);
  sql_ok(sql);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  duckdb_disconnect(&conn);
  duckdb_close(&db);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

static uint8_t *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*n);
  assert_int_equal(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

static sp_pq_meta *parse_file(const char *path) {
  size_t n;
  uint8_t *b = read_all(path, &n);
  uint32_t flen;
  sp_error err = {0};
  assert_int_equal(sp__pq_footer_length(b + n - SP_PQ_TAIL, (int64_t)n, &flen, &err), SP_OK);
  int64_t start = (int64_t)n - SP_PQ_TAIL - flen;
  sp_pq_meta *m = NULL;
  if (sp__pq_meta_parse(b + start, flen, start, &m, &err) != SP_OK) fail_msg("%s", err.msg);
  free(b);
  return m;
}

static int64_t file_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (int64_t)st.st_size;
}

static void test_footer_matches_duckdb(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file);
  assert_int_equal(m->n_top, 8);
  assert_string_equal(m->top[0], "id");
  assert_string_equal(m->top[6], "s");
  assert_string_equal(m->top[7], "pad");
  assert_int_equal(m->n_leaves, 9); /* s has two leaves */
  assert_int_equal(m->leaves[6].top, 6);
  assert_int_equal(m->leaves[7].top, 6);
  assert_false(m->leaves[6].flat);
  assert_int_equal(m->leaves[0].kind, SP_PQ_KIND_INT);
  assert_int_equal(m->leaves[1].kind, SP_PQ_KIND_DOUBLE);
  assert_int_equal(m->leaves[2].kind, SP_PQ_KIND_STRING);
  assert_int_equal(m->leaves[4].kind, SP_PQ_KIND_DATE);
  assert_int_equal(m->num_rows, ROWS);
  assert_int_equal(m->n_rgs, (ROWS + RG_ROWS - 1) / RG_ROWS);
  /* Every chunk where DuckDB says it is. */
  char sql[600];
  for (size_t g = 0; g < m->n_rgs; g++)
    for (size_t i = 0; i < m->n_leaves; i++) {
      snprintf(sql, sizeof sql,
               "SELECT CASE WHEN dictionary_page_offset >= 4 THEN dictionary_page_offset ELSE data_page_offset END "
               "|| ':' || total_compressed_size || ':' || num_values FROM parquet_metadata('%s') "
               "WHERE row_group_id = %zu AND column_id = %zu", file, g, i);
      char *want = sql_text(sql), got[100];
      const sp_pq_chunk *c = &m->rgs[g].chunks[i];
      snprintf(got, sizeof got, "%lld:%lld:%lld", (long long)c->start, (long long)c->len, (long long)c->num_values);
      assert_string_equal(got, want);
      free(want);
    }
  assert_int_equal(m->rgs[2].chunks[5].null_count, RG_ROWS); /* maybe is NULL from row 40960 */
  assert_int_equal(m->rgs[0].chunks[5].null_count, 0);
  sp__pq_meta_free(m);
}

static sp_pq_plan plan_of(const sp_pq_meta *m, const char *const *cols, size_t n, const char *where, int64_t limit) {
  char *json = NULL, sql[600];
  if (where) {
    snprintf(sql, sizeof sql, "SELECT * FROM t WHERE %s", where);
    assert_int_equal(sp_duckdb_serialize_sql(sql, "a test filter", &json, NULL), SP_OK);
  }
  sp_pq_plan p;
  sp_error err = {0};
  if (sp__pq_plan(m, cols, n, json, limit, &p, &err) != SP_OK) fail_msg("%s", err.msg);
  free(json);
  return p;
}

/* The row groups a plan keeps, as a string of 0 and 1. */
static const char *kept(const sp_pq_plan *p, size_t n, char *buf) {
  for (size_t i = 0; i < n; i++) buf[i] = p->keep[i] ? '1' : '0';
  buf[n] = '\0';
  return buf;
}

static void test_plan_projection(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file);
  const char *id[] = {"id"}, *upper[] = {"ID", "Pad"}, *nested[] = {"s"};
  sp_pq_plan p = plan_of(m, id, 1, NULL, -1);
  assert_int_equal(p.n_kept, m->n_rgs);
  assert_int_equal(p.n_ranges, m->n_rgs); /* one chunk per row group */
  int64_t want = 0;
  for (size_t g = 0; g < m->n_rgs; g++) want += m->rgs[g].chunks[0].len;
  assert_int_equal(p.bytes, want);
  assert_true(p.bytes * 3 < file_size(file));
  sp__pq_plan_free(&p);
  p = plan_of(m, upper, 2, NULL, -1); /* names bind regardless of case, as in DuckDB */
  want += 0;
  for (size_t g = 0; g < m->n_rgs; g++) want += m->rgs[g].chunks[8].len;
  assert_int_equal(p.bytes, want);
  sp__pq_plan_free(&p);
  p = plan_of(m, nested, 1, NULL, -1); /* a struct: both leaves, adjacent, one range per row group */
  assert_int_equal(p.n_ranges, m->n_rgs);
  assert_int_equal(p.ranges[0].end - p.ranges[0].start, m->rgs[0].chunks[6].len + m->rgs[0].chunks[7].len);
  sp__pq_plan_free(&p);
  p = plan_of(m, NULL, 0, NULL, 0); /* a schema read: no row group at all */
  assert_int_equal(p.n_kept, 0);
  assert_int_equal(p.n_ranges, 0);
  sp__pq_plan_free(&p);
  p = plan_of(m, id, 1, NULL, RG_ROWS + 1); /* a limit without conditions: the first row groups that hold it */
  char buf[16];
  assert_string_equal(kept(&p, m->n_rgs, buf), "11000");
  sp__pq_plan_free(&p);
  sp__pq_meta_free(m);
}

static void test_plan_statistics(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file);
  const char *id[] = {"id"};
  static const struct { const char *where, *kept; } cases[] = {
      {"id < 30000", "11000"},
      {"30000 > id", "11000"},
      {"id BETWEEN 50000 AND 50010", "00100"},
      {"id = 81920 OR id = 5", "10001"},
      {"id IN (1, 99999)", "10001"},
      {"id > 99999", "00000"},
      {"id >= 99999", "00001"},
      {"id <> 3", "11111"},
      {"id > 2.5 AND id < 20479.5", "10000"},   /* decimals compared exactly */
      {"id < 20480.0e0", "10000"},              /* a double */
      {"k = 9", "00000"},
      {"name = 'zzz'", "00000"},
      {"name >= 'name0' AND name < 'name1'", "11111"},
      {"d >= DATE '2020-03-01'", "00111"},       /* day 60 is row 60000 */
      {"d < '2020-01-21'", "10000"},             /* a string against a date, cast as DuckDB does */
      {"fare < -1", "00000"},
      {"fare <= 30718.5", "10000"},
      {"fare > 1e12", "11111"},                  /* NaN would match in DuckDB: no nan_count, no pruning */
      {"maybe IS NOT NULL", "11000"},
      {"maybe IS NULL", "00111"},
      {"id + 1 < 5", "11111"},                   /* not a column and a constant: kept */
      {"upper(name) = 'X'", "11111"},
      {"s.a < 5", "11111"},                      /* nested: kept */
      {"ID < 30000", "11000"},
  };
  char buf[16];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sp_pq_plan p = plan_of(m, id, 1, cases[i].where, -1);
    if (strcmp(kept(&p, m->n_rgs, buf), cases[i].kept) != 0)
      fail_msg("%s: kept %s, expected %s", cases[i].where, buf, cases[i].kept);
    sp__pq_plan_free(&p);
  }
  /* Conditions on a column the projection does not name: its chunks are read too, and its bloom filters. */
  sp_pq_plan p = plan_of(m, id, 1, "name = 'name5'", -1);
  int64_t chunks = 0;
  for (size_t g = 0; g < m->n_rgs; g++) chunks += m->rgs[g].chunks[0].len + m->rgs[g].chunks[2].len;
  assert_true(m->rgs[0].chunks[2].bloom_start > 0);
  assert_true(p.bytes > chunks);
  sp__pq_plan_free(&p);
  /* Conditions that do not parse: every column, every row group. */
  sp_error err = {0};
  assert_int_equal(sp__pq_plan(m, id, 1, "", -1, &p, &err), SP_OK);
  assert_int_equal(p.n_kept, m->n_rgs);
  assert_true(p.bytes > chunks);
  sp__pq_plan_free(&p);
  sp__pq_meta_free(m);
}

/* A copy of the file holding only what a plan needs; its path in `out`. */
static void make_copy(const sp_pq_meta *m, const sp_pq_plan *p, const char *name, char *out, size_t n) {
  snprintf(out, n, "%s/%s", dir, name);
  int src = open(file, O_RDONLY);
  assert_true(src >= 0);
  sp_error err = {0};
  if (sp__ranged_copy(src, m, p, out, &err) != SP_OK) fail_msg("%s", err.msg);
  close(src);
}

/* The same query on the whole file and on a copy: the copy's answer, compared with the whole file's. */
static void same_answer(const char *copy, const char *select, const char *where) {
  char sql[1000];
  const char *paths[] = {file, copy};
  char *answers[2];
  for (int k = 0; k < 2; k++) {
    snprintf(sql, sizeof sql, "SELECT count(*) || ':' || coalesce(sum(hash(%s)), 0) FROM read_parquet('%s') WHERE %s",
             select, paths[k], where ? where : "true");
    answers[k] = sql_text(sql);
    if (answers[k] == NULL) fail_msg("%s failed", sql);
  }
  assert_string_equal(answers[1], answers[0]);
  free(answers[0]);
  free(answers[1]);
}

static void test_copies_answer_like_the_file(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file);
  static const struct { const char *cols[3]; size_t n; const char *select, *where; } cases[] = {
      {{"id"}, 1, "id", NULL},
      {{"name", "k"}, 2, "name, k", NULL},
      {{"id", "fare"}, 2, "id, fare", "id < 30000"},
      {{"pad", "d"}, 2, "pad", "d >= DATE '2020-03-01'"},
      {{"s", "id"}, 2, "s", "id BETWEEN 50000 AND 50010"},
      {{"name"}, 1, "name", "name = 'name42'"},
      {{"maybe"}, 1, "maybe", "maybe IS NULL"},
      {{"id"}, 1, "id", "id > 99999"},
  };
  char copy[400], name[32];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sp_pq_plan p = plan_of(m, cases[i].cols, cases[i].n, cases[i].where, -1);
    snprintf(name, sizeof name, "copy%zu.parquet", i);
    make_copy(m, &p, name, copy, sizeof copy);
    same_answer(copy, cases[i].select, cases[i].where);
    /* Holes cost no disk: the copy holds about what the plan needed (file systems round to blocks). */
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_true((int64_t)st.st_blocks * 512 <= p.bytes + (int64_t)(p.n_ranges + 4) * 8192 + (int64_t)m->raw_len);
    sp__pq_plan_free(&p);
  }
  sp__pq_meta_free(m);
}

static void test_holes_cannot_be_read_silently(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file);
  const char *id[] = {"id"};
  char copy[400], sql[600];
  sp_pq_plan p = plan_of(m, id, 1, "id < 30000", -1);
  make_copy(m, &p, "holes.parquet", copy, sizeof copy);
  /* The dropped row groups are gone from the footer: DuckDB cannot reach them, with or without a filter. */
  snprintf(sql, sizeof sql, "SELECT count(*) FROM read_parquet('%s')", copy);
  char *n = sql_text(sql);
  assert_string_equal(n, "40960");
  free(n);
  snprintf(sql, sizeof sql, "SELECT max(id) FROM read_parquet('%s')", copy);
  n = sql_text(sql);
  assert_string_equal(n, "40959");
  free(n);
  /* A column that was not fetched is a hole: reading it fails, it never reads as zeros. */
  const char *other[] = {"fare", "name", "d", "pad", "s", "maybe"};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
    snprintf(sql, sizeof sql, "SELECT sum(hash(%s)) FROM read_parquet('%s')", other[i], copy);
    char *v = sql_text(sql);
    if (v != NULL) fail_msg("reading %s from holes answered %s", other[i], v);
  }
  sp__pq_plan_free(&p);
  sp__pq_meta_free(m);
}

static void test_subset_round_trip(void **state) {
  (void)state;
  sp_pq_meta *m = parse_file(file), *again = NULL;
  bool keep[8] = {false, true, false, true, false};
  sp_buf out = {0};
  sp_error err = {0};
  assert_int_equal(sp__pq_footer_subset(m, keep, &out, &err), SP_OK);
  uint32_t flen;
  assert_int_equal(sp__pq_footer_length((const uint8_t *)out.data + out.len - SP_PQ_TAIL, m->data_end + (int64_t)out.len,
                                        &flen, &err), SP_OK);
  assert_int_equal(flen + SP_PQ_TAIL, out.len);
  assert_int_equal(sp__pq_meta_parse((const uint8_t *)out.data, flen, m->data_end, &again, &err), SP_OK);
  assert_int_equal(again->n_rgs, 2);
  assert_int_equal(again->num_rows, m->rgs[1].num_rows + m->rgs[3].num_rows);
  assert_int_equal(again->rgs[1].chunks[8].start, m->rgs[3].chunks[8].start);
  assert_int_equal(again->n_leaves, m->n_leaves);
  sp__pq_meta_free(again);
  /* More than 14 row groups: the list header takes a separate count. */
  char sql[400], many[300];
  snprintf(many, sizeof many, "%s/many.parquet", dir);
  snprintf(sql, sizeof sql, "COPY (SELECT i AS x FROM range(40000) t(i)) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 2048)", many);
  sql_ok(sql);
  sp_pq_meta *mm = parse_file(many);
  assert_true(mm->n_rgs > 15);
  bool *all = calloc(mm->n_rgs, sizeof *all);
  for (size_t i = 0; i < mm->n_rgs; i++) all[i] = i != 3;
  out.len = 0;
  assert_int_equal(sp__pq_footer_subset(mm, all, &out, &err), SP_OK);
  assert_int_equal(sp__pq_meta_parse((const uint8_t *)out.data, out.len - SP_PQ_TAIL, mm->data_end, &again, &err), SP_OK);
  assert_int_equal(again->n_rgs, mm->n_rgs - 1);
  assert_int_equal(again->num_rows, 40000 - mm->rgs[3].num_rows);
  sp__pq_meta_free(again);
  free(all);
  sp__pq_meta_free(mm);
  sp_buf_free(&out);
  sp__pq_meta_free(m);
}

static void test_malformed(void **state) {
  (void)state;
  uint8_t tail[SP_PQ_TAIL] = {10, 0, 0, 0, 'P', 'A', 'R', 'E'};
  uint32_t flen;
  sp_error err = {0};
  assert_int_equal(sp__pq_footer_length(tail, 1000, &flen, &err), SP_ENOTSUP);
  memcpy(tail + 4, "PAR2", 4);
  assert_int_equal(sp__pq_footer_length(tail, 1000, &flen, &err), SP_EINVAL);
  memcpy(tail + 4, "PAR1", 4);
  assert_int_equal(sp__pq_footer_length(tail, 21, &flen, &err), SP_EINVAL); /* 10 bytes cannot fit */
  assert_int_equal(sp__pq_footer_length(tail, 22, &flen, &err), SP_OK);
  assert_int_equal(flen, 10);
  /* Every truncation of a real footer is refused with a message; none reads past its end. */
  size_t n;
  uint8_t *b = read_all(file, &n);
  assert_int_equal(sp__pq_footer_length(b + n - SP_PQ_TAIL, (int64_t)n, &flen, &err), SP_OK);
  const uint8_t *meta = b + n - SP_PQ_TAIL - flen;
  for (uint32_t len = 0; len < flen; len++) {
    uint8_t *cut = malloc(len ? len : 1);
    memcpy(cut, meta, len);
    sp_pq_meta *m = NULL;
    err.msg[0] = '\0';
    assert_int_equal(sp__pq_meta_parse(cut, len, (int64_t)n - SP_PQ_TAIL - flen, &m, &err), SP_EINVAL);
    assert_true(strlen(err.msg) > 0);
    free(cut);
  }
  /* A footer whose chunks lie beyond where it starts is refused. */
  sp_pq_meta *m = NULL;
  assert_int_equal(sp__pq_meta_parse(meta, flen, 1000, &m, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "outside the file"));
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_footer_matches_duckdb),
      cmocka_unit_test(test_plan_projection),
      cmocka_unit_test(test_plan_statistics),
      cmocka_unit_test(test_copies_answer_like_the_file),
      cmocka_unit_test(test_holes_cannot_be_read_silently),
      cmocka_unit_test(test_subset_round_trip),
      cmocka_unit_test(test_malformed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
