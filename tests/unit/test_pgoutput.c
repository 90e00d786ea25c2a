/* SPDX-License-Identifier: Apache-2.0
 *
 * The pgoutput decoder (src/connectors/pgoutput.c) on messages laid out as PostgreSQL's walsender sends them:
 * net changes per key across transactions (insert → update → delete), key changes, unchanged TOASTed values,
 * a configured key, whole transactions only, truncation, LSN text, and malformed input refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/pgoutput.h"
#include "spice/arrow.h"

/* ---- Message builders --------------------------------------------------------------------------------------- */

typedef struct msg {
  uint8_t b[4096];
  size_t n;
} msg;

static void u8(msg *m, uint8_t v) { m->b[m->n++] = v; }
static void be(msg *m, uint64_t v, int k) {
  for (int i = k - 1; i >= 0; i--) u8(m, (uint8_t)(v >> (8 * i)));
}
static void str(msg *m, const char *s) {
  memcpy(m->b + m->n, s, strlen(s) + 1);
  m->n += strlen(s) + 1;
}

/* Relation 16384 public.t (id int key, v text, big text); full: REPLICA IDENTITY FULL (every column flagged). */
static msg relation_typed(int full, uint32_t v_oid) {
  msg m = {.n = 0};
  u8(&m, 'R');
  be(&m, 16384, 4);
  str(&m, "public");
  str(&m, "t");
  u8(&m, full ? 'f' : 'd');
  be(&m, 3, 2);
  const char *names[3] = {"id", "v", "big"};
  for (int i = 0; i < 3; i++) {
    u8(&m, i == 0 || full ? 1 : 0);
    str(&m, names[i]);
    be(&m, i == 0 ? 23 : i == 1 ? v_oid : 25, 4);
    be(&m, 0xffffffffu, 4);
  }
  return m;
}

static msg relation_ident(int full) { return relation_typed(full, 25); }
static msg relation(void) { return relation_ident(0); }

static msg begin(void) {
  msg m = {.n = 0};
  u8(&m, 'B');
  be(&m, 0x100, 8);
  be(&m, 0, 8);
  be(&m, 7, 4);
  return m;
}

static msg commit(uint64_t end) {
  msg m = {.n = 0};
  u8(&m, 'C');
  u8(&m, 0);
  be(&m, end - 8, 8);
  be(&m, end, 8);
  be(&m, 0, 8);
  return m;
}

/* A tuple of 3 columns: NULL for "\n" (null), "\u" for unchanged. */
static void tuple(msg *m, const char *const v[3]) {
  be(m, 3, 2);
  for (int i = 0; i < 3; i++) {
    if (v[i] == NULL) {
      u8(m, 'n');
    } else if (strcmp(v[i], "\\u") == 0) {
      u8(m, 'u');
    } else {
      u8(m, 't');
      be(m, strlen(v[i]), 4);
      memcpy(m->b + m->n, v[i], strlen(v[i]));
      m->n += strlen(v[i]);
    }
  }
}

static msg insert(const char *id, const char *v, const char *big) {
  msg m = {.n = 0};
  const char *t[3] = {id, v, big};
  u8(&m, 'I');
  be(&m, 16384, 4);
  u8(&m, 'N');
  tuple(&m, t);
  return m;
}

/* An update; old_id: the old key when it changed (a 'K' tuple), else NULL. */
static msg update(const char *old_id, const char *id, const char *v, const char *big) {
  msg m = {.n = 0};
  const char *t[3] = {id, v, big}, *k[3] = {old_id, NULL, NULL};
  u8(&m, 'U');
  be(&m, 16384, 4);
  if (old_id) {
    u8(&m, 'K');
    tuple(&m, k);
  }
  u8(&m, 'N');
  tuple(&m, t);
  return m;
}

static msg delete_(const char *id) {
  msg m = {.n = 0};
  const char *k[3] = {id, NULL, NULL};
  u8(&m, 'D');
  be(&m, 16384, 4);
  u8(&m, 'K');
  tuple(&m, k);
  return m;
}

static void feed(pgo_decoder *d, msg m) {
  sp_error err = {0};
  int rc = pgo_feed(d, m.b, m.n, &err);
  if (rc != SP_OK) fail_msg("pgo_feed: %s", err.msg);
}

/* ---- Reading batches ---------------------------------------------------------------------------------------- */

/* Row i of a batch as "op|id|v|big" (NULL as ∅). */
static void row_text(const struct ArrowArray *a, int64_t i, char *buf, size_t n) {
  size_t o = 0;
  for (int64_t c = 0; c < a->n_children; c++) {
    const struct ArrowArray *col = a->children[c];
    const int32_t *offs = col->buffers[1];
    const char *data = col->buffers[2];
    if (sp_array_is_null(col, i)) o += (size_t)snprintf(buf + o, n - o, "%s∅", c ? "|" : "");
    else o += (size_t)snprintf(buf + o, n - o, "%s%.*s", c ? "|" : "", offs[i + 1] - offs[i], data + offs[i]);
  }
}

/* Takes the pending changes and checks them against `want` (rows in any order, NULL-terminated). */
static void expect_rows(pgo_decoder *d, const char *const *want) {
  struct ArrowSchema s;
  struct ArrowArray a;
  sp_error err = {0};
  assert_int_equal(pgo_take(d, &s, &a, &err), SP_OK);
  size_t n = 0;
  while (want[n]) n++;
  assert_int_equal(a.length, (int64_t)n);
  assert_int_equal(s.n_children, 4);
  assert_string_equal(s.children[0]->name, "_op");
  assert_string_equal(s.children[3]->name, "big");
  for (size_t w = 0; w < n; w++) {
    int found = 0;
    for (int64_t i = 0; i < a.length && !found; i++) {
      char buf[256];
      row_text(&a, i, buf, sizeof buf);
      found = strcmp(buf, want[w]) == 0;
    }
    if (!found) fail_msg("row %s not in the batch", want[w]);
  }
  a.release(&a);
  s.release(&s);
}

/* ---- Tests -------------------------------------------------------------------------------------------------- */

/* char(n) (bpchar, oid 1042): its padding is dropped, as the COPY decoder drops it; text keeps its spaces. */
static void char_padding_dropped(void **state) {
  (void)state;
  pgo_decoder *d;
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation_typed(0, 1042));
  feed(d, begin());
  feed(d, insert("1", "ab   ", "x  "));
  feed(d, insert("2", "     ", NULL));
  feed(d, commit(0x1000));
  expect_rows(d, (const char *const[]){"insert|1|ab|x  ", "insert|2||∅", NULL});
  pgo_decoder_free(d);
}

static void net_change_per_key(void **state) {
  (void)state;
  pgo_decoder *d;
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation());
  feed(d, begin());
  feed(d, insert("1", "a", "x"));
  feed(d, insert("2", "b", NULL));
  feed(d, insert("3", "c", "z"));
  assert_true(pgo_in_transaction(d));
  feed(d, commit(0x1000));
  feed(d, begin());
  feed(d, update(NULL, "1", "a2", "\\u")); /* the unchanged value comes from the earlier insert */
  feed(d, delete_("2"));
  feed(d, update("3", "30", "c", "z2")); /* key change */
  feed(d, commit(0x2000));
  assert_int_equal(pgo_pending_commits(d), 2);
  assert_int_equal(pgo_pending_lsn(d), 0x2000);
  size_t nk;
  const char *const *key = pgo_key(d, &nk);
  assert_int_equal(nk, 1);
  assert_string_equal(key[0], "id");
  pgo_decoder_free(d);
}

static void batches_hold_net_changes(void **state) {
  (void)state;
  pgo_decoder *d;
  sp_error err = {0};
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation());
  feed(d, begin());
  feed(d, insert("1", "a", "x"));
  feed(d, insert("2", "b", NULL));
  feed(d, commit(0x1000));
  feed(d, begin());
  feed(d, update(NULL, "1", "a2", "\\u"));
  feed(d, delete_("2"));
  feed(d, insert("4", "d", "w"));
  feed(d, commit(0x2000));
  expect_rows(d, (const char *const[]){"insert|1|a2|x", "delete|2|∅|∅", "insert|4|d|w", NULL});
  assert_int_equal(pgo_pending_rows(d), 0);
  assert_int_equal(pgo_take(d, &(struct ArrowSchema){0}, &(struct ArrowArray){0}, &err), SP_EINVAL);
  /* The next batch starts afresh: an update of a key from an earlier batch is an update. */
  feed(d, begin());
  feed(d, update(NULL, "4", "d2", "w2"));
  feed(d, update("1", "10", "a3", "y"));
  feed(d, commit(0x3000));
  expect_rows(d, (const char *const[]){"update|4|d2|w2", "delete|1|∅|∅", "update|10|a3|y", NULL});
  pgo_decoder_free(d);
}

static void only_whole_transactions(void **state) {
  (void)state;
  pgo_decoder *d;
  sp_error err = {0};
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation());
  feed(d, begin());
  feed(d, insert("1", "a", "x"));
  assert_int_equal(pgo_take(d, &(struct ArrowSchema){0}, &(struct ArrowArray){0}, &err), SP_EINVAL);
  feed(d, commit(0x10));
  feed(d, begin());
  feed(d, insert("2", "b", "y"));
  assert_int_equal(pgo_take(d, &(struct ArrowSchema){0}, &(struct ArrowArray){0}, &err), SP_EINVAL);
  feed(d, commit(0x20));
  expect_rows(d, (const char *const[]){"insert|1|a|x", "insert|2|b|y", NULL});
  pgo_decoder_free(d);
}

static void unknown_unchanged_value_needs_reload(void **state) {
  (void)state;
  pgo_decoder *d;
  sp_error err = {0};
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation());
  feed(d, begin());
  msg m = update(NULL, "7", "v", "\\u");
  assert_int_equal(pgo_feed(d, m.b, m.n, &err), SP_ENOTSUP);
  assert_non_null(strstr(err.msg, "\"big\""));
  pgo_decoder_free(d);
}

/* A delete with REPLICA IDENTITY FULL: an 'O' tuple with every column. */
static msg delete_full(const char *id, const char *v, const char *big) {
  msg m = {.n = 0};
  const char *t[3] = {id, v, big};
  u8(&m, 'D');
  be(&m, 16384, 4);
  u8(&m, 'O');
  tuple(&m, t);
  return m;
}

static void configured_key(void **state) {
  (void)state;
  pgo_decoder *d;
  sp_error err = {0};
  const char *key[] = {"v"};
  /* With the default replica identity (id), a key on v could not be found again by a delete. */
  assert_int_equal(pgo_decoder_new(key, 1, &d, NULL), SP_OK);
  msg m = relation();
  assert_int_equal(pgo_feed(d, m.b, m.n, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "\"v\" is not in the table's replica identity"));
  pgo_decoder_free(d);
  /* With REPLICA IDENTITY FULL it can. */
  assert_int_equal(pgo_decoder_new(key, 1, &d, NULL), SP_OK);
  feed(d, relation_ident(1));
  feed(d, begin());
  feed(d, insert("1", "k", "x"));
  feed(d, insert("2", "k", "y")); /* same key "k": the later row wins */
  feed(d, insert("3", "j", "z"));
  feed(d, commit(0x10));
  expect_rows(d, (const char *const[]){"insert|2|k|y", "insert|3|j|z", NULL});
  feed(d, begin());
  feed(d, delete_full("3", "j", "z"));
  feed(d, commit(0x20));
  expect_rows(d, (const char *const[]){"delete|∅|j|∅", NULL});
  pgo_decoder_free(d);
  const char *missing[] = {"nope"};
  assert_int_equal(pgo_decoder_new(missing, 1, &d, NULL), SP_OK);
  m = relation();
  assert_int_equal(pgo_feed(d, m.b, m.n, &err), SP_EINVAL);
  assert_non_null(strstr(err.msg, "\"nope\""));
  pgo_decoder_free(d);
}

static void truncate_is_reported(void **state) {
  (void)state;
  pgo_decoder *d;
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  feed(d, relation());
  feed(d, begin());
  msg m = {.n = 0};
  u8(&m, 'T');
  be(&m, 1, 4);
  u8(&m, 0);
  be(&m, 16384, 4);
  feed(d, m);
  assert_true(pgo_truncated(d));
  pgo_decoder_free(d);
}

static void malformed_input(void **state) {
  (void)state;
  pgo_decoder *d;
  sp_error err = {0};
  assert_int_equal(pgo_decoder_new(NULL, 0, &d, NULL), SP_OK);
  msg r = relation();
  for (size_t cut = 1; cut < r.n; cut++) assert_int_equal(pgo_feed(d, r.b, cut, &err), SP_EIO);
  feed(d, r);
  msg i = insert("1", "a", "b");
  assert_int_equal(pgo_feed(d, i.b, i.n, &err), SP_EIO); /* outside a transaction */
  feed(d, begin());
  for (size_t cut = 1; cut < i.n; cut++) assert_int_equal(pgo_feed(d, i.b, cut, &err), SP_EIO);
  i.b[5] = 'X';
  assert_int_equal(pgo_feed(d, i.b, i.n, &err), SP_EIO);
  const uint8_t unknown[] = {'Z', 0};
  assert_int_equal(pgo_feed(d, unknown, sizeof unknown, &err), SP_EIO);
  assert_int_equal(pgo_feed(d, unknown, 0, &err), SP_EIO);
  pgo_decoder_free(d);
}

static void lsn_text(void **state) {
  (void)state;
  char buf[32];
  uint64_t v;
  pgo_lsn_format(0x16B3748ull | (3ull << 32), buf, sizeof buf);
  assert_string_equal(buf, "3/16B3748");
  assert_int_equal(pgo_lsn_parse("3/16B3748", &v), 0);
  assert_int_equal(v, 0x3016B3748ull);
  assert_int_equal(pgo_lsn_parse("0/0", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(pgo_lsn_parse("3/16B3748x", &v), -1);
  assert_int_equal(pgo_lsn_parse("nope", &v), -1);
  assert_int_equal(pgo_lsn_parse("", &v), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(net_change_per_key),
      cmocka_unit_test(char_padding_dropped),
      cmocka_unit_test(batches_hold_net_changes),
      cmocka_unit_test(only_whole_transactions),
      cmocka_unit_test(unknown_unchanged_value_needs_reload),
      cmocka_unit_test(configured_key),
      cmocka_unit_test(truncate_is_reported),
      cmocka_unit_test(malformed_input),
      cmocka_unit_test(lsn_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
