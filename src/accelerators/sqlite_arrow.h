/* SPDX-License-Identifier: Apache-2.0
 *
 * SQLite ⇄ Arrow, shared by the sqlite connector (src/connectors/sqlite.c) and the sqlite accelerator
 * (src/accelerators/sqlite.c):
 *
 *   - the mapping of a declared column type (`DECIMAL(10,2)`, `VARCHAR(20)`, `DATETIME`) to an Arrow type,
 *     following SQLite's affinity rules where the name says nothing more precise;
 *   - a reader: one prepared SELECT stepped row by row into Arrow batches of up to SQA_BATCH_ROWS rows, with
 *     the buffers of released batches reused for the next ones;
 *   - a writer: the batches of a stream bound into one prepared INSERT;
 *   - the translation of a federated filter (`SELECT * FROM ds WHERE …`) into a SQLite WHERE clause through
 *     the postgres connector's translator (pg_filter.c), for columns that compare alike in both engines.
 *
 * Values that do not fit their column (text in an INTEGER column, 300 in a TINYINT) are errors naming the
 * table, the column and the row, or NULLs when the dataset says unsupported_type_action: warn | ignore.
 */
#ifndef SPICE_SQLITE_ARROW_H
#define SPICE_SQLITE_ARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "spice/arrow_abi.h"
#include "spice/error.h"

#define SQA_BATCH_ROWS 65536

/* How the stored values of a column become Arrow values. */
typedef enum sqa_kind {
  SQA_BOOL = 0, /* 0/1 (or 'true'/'false' text) → bool */
  SQA_INT,      /* INTEGER → signed integer of `width` bytes (also dates, times, timestamps stored raw) */
  SQA_UINT,     /* INTEGER → unsigned integer of `width` bytes */
  SQA_FLOAT,    /* INTEGER or REAL → float32 (width 4) or float64 */
  SQA_TEXT,     /* TEXT (numbers as SQLite prints them) → utf8 */
  SQA_BLOB,     /* any value's bytes → binary */
  SQA_FIXED,    /* BLOB of exactly `width` bytes → fixed-size binary */
  SQA_DECIMAL,  /* INTEGER, REAL or decimal TEXT → decimal128(precision, scale) */
  SQA_DATE_TEXT,/* 'YYYY-MM-DD' → date32 */
  SQA_TS_TEXT   /* 'YYYY-MM-DD[ T]HH:MM[:SS[.f]][Z|±HH:MM]' or unix seconds → timestamp[us] */
} sqa_kind;

typedef struct sqa_column {
  char *name;       /* malloc'd */
  char *decl;       /* malloc'd: the declared type, for messages ("" when none) */
  char format[64];  /* Arrow format */
  sqa_kind kind;
  int width;        /* bytes of SQA_INT/UINT/FLOAT/FIXED */
  int precision, scale;
  bool pushable;    /* a comparison on it means the same in SQLite and in the engine */
} sqa_column;

void sqa_columns_free(sqa_column *cols, size_t n);
/* Deep copy of n columns; NULL when out of memory. */
sqa_column *sqa_columns_copy(const sqa_column *cols, size_t n);

/* Maps a declared type (borrowed; NULL or "" for none) to col's format/kind/width/precision/scale. Never
 * fails: a name SQLite gives NUMERIC affinity but that says no more (`MONEY`, `TIME`) is read as text. */
void sqa_map_decltype(const char *decl, sqa_column *col);

/* The column an Arrow field (format) is stored as by the accelerator: its SQL declared type into decl and the
 * reading kind into col. SP_ENOTSUP for types it cannot store (lists, structs, intervals, …). */
int sqa_map_arrow(const char *format, sqa_column *col, char *decl, size_t n, sp_error *err);

/* The struct schema of the columns. *out is owned by the caller. */
int sqa_schema(const sqa_column *cols, size_t n, struct ArrowSchema *out, sp_error *err);

typedef enum sqa_action { SQA_ACTION_ERROR = 0, SQA_ACTION_WARN, SQA_ACTION_IGNORE } sqa_action;

typedef struct sqa_read_opts {
  const char *dataset;   /* for messages */
  const char *table;     /* for messages */
  sqa_action action;     /* values that do not fit their column */
  /* Called once with `db` and `ctx` when the stream is released: closes or pools the connection. */
  void (*done)(void *ctx, sqlite3 *db);
  void *ctx;
  int64_t *rows_read;    /* optional: rows produced so far are added here (atomically) */
} sqa_read_opts;

/* Prepares `sql` on `db` and returns a stream of its rows as `cols` (copied; one per result column). The
 * stream owns `db` from the call on (opts->done receives it at release, or at once when this fails). */
int sqa_read(sqlite3 *db, const char *sql, const sqa_column *cols, size_t n, const sqa_read_opts *opts,
             struct ArrowArrayStream *out, sp_error *err);

/* Binds element j (before the array's offset) of the non-struct array `a` (Arrow `format`, stored as `col`) to
 * parameter k of st. SQLITE_RANGE for an unsigned value over 2^63-1. */
int sqa_bind(sqlite3_stmt *st, int k, const struct ArrowArray *a, const sqa_column *col, const char *format, int64_t j);

/* `SELECT * FROM <dataset> WHERE …` as a SQLite boolean expression over the pushable columns. *out is
 * malloc'd ("" when there is no WHERE). SP_ENOTSUP when a condition cannot go to SQLite (the engine alone
 * applies the filter then). */
int sqa_where(const char *dataset, const sqa_column *cols, size_t n, const char *filter_query, char **out, sp_error *err);

/* Inserts every row of `stream` (consumed) with `stmt`, prepared with one parameter per column of `cols` (the
 * target columns, same order as the stream's fields). Runs inside the caller's transaction. */
int sqa_write(sqlite3 *db, sqlite3_stmt *stmt, const sqa_column *cols, size_t n, struct ArrowArrayStream *stream,
              int64_t *out_rows, sp_error *err);

/* A spicepod column reference, `col` or `(a, b)` (names may be double-quoted), split into *names (malloc'd
 * array of malloc'd strings; free with sqa_names_free). SP_EINVAL when it is not one. */
int sqa_colref_parse(const char *ref, char ***names, size_t *n, sp_error *err);
void sqa_names_free(char **names, size_t n);

/* `s` quoted as an SQLite identifier ("a""b"). malloc'd; NULL when out of memory. */
char *sqa_ident(const char *s);

#endif
