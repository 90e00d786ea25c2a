/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Parquet footer reader and the read planner (src/connectors/parquet_footer.c,
 * parquet_plan.c): any bytes as the end of a Parquet file (FileMetaData, its length, "PAR1"), and the same
 * bytes as FileMetaData alone. Whatever parses must hold together: leaves name a top-level column, ranges lie
 * in the file; plans (every column, one column, pushed conditions parsed by DuckDB at start-up) give sorted,
 * disjoint ranges inside the file; the footer rewritten without the dropped row groups parses back with the
 * kept row groups and their row count. Seeds: footers of files DuckDB wrote (tests/fuzz/corpus/parquet_footer/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/parquet_footer.h"
#include "connectors/parquet_plan.h"
#include "spice/duckdb_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The data of the pretended file ends here: far beyond the input, so real footers' offsets are valid. */
static const int64_t DATA_END = (int64_t)1 << 40;

/* Conditions on the seeds' column names, as json_serialize_sql gives them to the planner. */
static const char *const CONDITIONS[] = {
    "SELECT * FROM t WHERE id < 30000 AND name = 'name5' AND d >= DATE '2020-03-01'",
    "SELECT * FROM t WHERE (fare BETWEEN 1 AND 2.5 OR k IN (1, 3)) AND note IS NOT NULL AND id <> 7",
    "SELECT * FROM t WHERE x IS NULL OR id >= 99999.5 OR id > 1e3 OR name < 'b' OR d < '2021-01-01'",
};
static char *filters[sizeof CONDITIONS / sizeof CONDITIONS[0]];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  for (size_t i = 0; i < sizeof CONDITIONS / sizeof CONDITIONS[0]; i++)
    if (sp_duckdb_serialize_sql(CONDITIONS[i], "a fuzz condition", &filters[i], NULL) != SP_OK) abort();
  return 0;
}

static void check_meta(const sp_pq_meta *m) {
  if (m->n_leaves == 0 || m->n_top == 0 || m->num_rows < 0) abort();
  for (size_t i = 0; i < m->n_leaves; i++)
    if (m->leaves[i].top < 0 || (size_t)m->leaves[i].top >= m->n_top) abort();
  for (size_t g = 0; g < m->n_rgs; g++) {
    if (m->rgs[g].span_start >= m->rgs[g].span_end || m->rgs[g].span_end > m->raw_len) abort();
    for (size_t i = 0; i < m->n_leaves; i++) {
      const sp_pq_chunk *c = &m->rgs[g].chunks[i];
      if (c->start < 4 || c->len < 0 || c->start + c->len > m->data_end) abort();
      if ((c->min && c->min + c->min_len > m->raw + m->raw_len) || (c->max && c->max + c->max_len > m->raw + m->raw_len)) abort();
    }
  }
}

static void check_plan(const sp_pq_meta *m, const sp_pq_plan *p) {
  size_t kept = 0;
  for (size_t g = 0; g < m->n_rgs; g++) kept += p->keep[g];
  if (kept != p->n_kept) abort();
  for (size_t i = 0; i < p->n_ranges; i++) {
    if (p->ranges[i].start < 4 || p->ranges[i].end <= p->ranges[i].start || p->ranges[i].end > m->data_end) abort();
    if (i && p->ranges[i].start <= p->ranges[i - 1].end) abort();
  }
}

/* The footer without the dropped row groups must parse back to the kept ones. */
static void check_subset(const sp_pq_meta *m, const sp_pq_plan *p) {
  sp_buf out = {0};
  sp_pq_meta *again = NULL;
  if (sp__pq_footer_subset(m, p->keep, &out, NULL) != SP_OK) abort();
  if (out.len < SP_PQ_TAIL || sp__pq_meta_parse((const uint8_t *)out.data, out.len - SP_PQ_TAIL, m->data_end, &again, NULL) != SP_OK)
    abort();
  int64_t rows = 0;
  for (size_t g = 0; g < m->n_rgs; g++) rows += p->keep[g] ? m->rgs[g].num_rows : 0;
  if (again->n_rgs != p->n_kept || again->num_rows != rows || again->n_leaves != m->n_leaves) abort();
  sp__pq_meta_free(again);
  sp_buf_free(&out);
}

static void plan_all(const sp_pq_meta *m) {
  const char *first[] = {m->top[0]};
  sp_pq_plan p;
  for (size_t k = 0; k < 3 + sizeof filters / sizeof filters[0]; k++) {
    const char *filter = k < 3 ? NULL : filters[k - 3];
    int64_t limit = k == 2 ? 1 : -1;
    if (sp__pq_plan(m, k == 0 ? NULL : first, k == 0 ? 0 : 1, filter, limit, &p, NULL) != SP_OK) continue;
    check_plan(m, &p);
    check_subset(m, &p);
    sp__pq_plan_free(&p);
  }
}

static void parse_and_check(const uint8_t *meta, size_t len) {
  sp_pq_meta *m = NULL;
  if (sp__pq_meta_parse(meta, len, DATA_END, &m, NULL) != SP_OK) return;
  check_meta(m);
  plan_all(m);
  sp__pq_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1); /* exact size: no read past the end goes unnoticed */
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  uint32_t flen;
  if (size >= SP_PQ_TAIL && sp__pq_footer_length(copy + size - SP_PQ_TAIL, DATA_END + (int64_t)size, &flen, NULL) == SP_OK &&
      flen <= size - SP_PQ_TAIL)
    parse_and_check(copy + size - SP_PQ_TAIL - flen, flen);
  parse_and_check(copy, size);
  free(copy);
  return 0;
}
