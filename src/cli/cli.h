/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal header of the `spice` command-line client (src/cli/). Nothing here is public API: the CLI talks to
 * spiced only through its HTTP API (and later Flight), never through the library's runtime.
 *
 * Layout: main.c dispatches to cmd_*.c; args.c parses options; split.c finds statement ends; table.c and csv.c
 * hold results and draw them; http_client.c wraps libcurl; sql_flight.c (the default) and sql_http.c (--http)
 * are the transports behind the sp_cli_transport interface; repl.c runs sessions (REPL, stdin, -e).
 */
#ifndef SPICE_CLI_H
#define SPICE_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spice/error.h"

#ifndef SPICE_VERSION
#define SPICE_VERSION "0.1.0"
#endif

#define SP_CLI_DEFAULT_ENDPOINT "http://127.0.0.1:8090"
#define SP_CLI_DEFAULT_FLIGHT_ENDPOINT "grpc://127.0.0.1:50051"
#define SP_CLI_MAX_ROWS 500        /* rows printed by the table format before "... N more rows" */
#define SP_CLI_MAX_CELL_WIDTH 60   /* display columns of one cell before it is cut with an ellipsis */

/* Exit codes of every command. */
enum { SP_CLI_EXIT_OK = 0, SP_CLI_EXIT_FAIL = 1, SP_CLI_EXIT_USAGE = 2 };

/* Set by the SIGINT handler of `spice sql`; a running transfer polls it and stops. */
extern volatile sig_atomic_t sp_cli_interrupted;

/* ---- growable byte buffer (buf.c) ------------------------------------------------------------------------- */

/* Always NUL-terminated once anything was appended. Zero-initialise; free with sp_cli_buf_reset. */
typedef struct sp_cli_buf {
  char *data;
  size_t len, cap;
} sp_cli_buf;

int sp_cli_buf_append(sp_cli_buf *b, const void *data, size_t len, sp_error *err);
int sp_cli_buf_putc(sp_cli_buf *b, char c, sp_error *err);
/* Drops the first n bytes (the rest moves to the front). */
void sp_cli_buf_consume(sp_cli_buf *b, size_t n);
/* Frees the bytes; b is empty and reusable afterwards. */
void sp_cli_buf_reset(sp_cli_buf *b);

/* ---- option parsing (args.c) ------------------------------------------------------------------------------ */

#define SP_CLI_MAX_OPTS 16
#define SP_CLI_MAX_POS 16

/* One accepted option: `--long VALUE`, `--long=VALUE`, `-s VALUE`, `-sVALUE`, or a flag without a value. */
typedef struct sp_cli_opt {
  const char *long_name; /* without the dashes: "http-endpoint" */
  char short_name;       /* 'e', or 0 for none */
  bool has_arg;
} sp_cli_opt;

/* values[i] belongs to spec[i]: NULL when absent, "" for a flag that is present, else the (last) value given.
 * All strings are borrowed from argv. */
typedef struct sp_cli_args {
  const char *values[SP_CLI_MAX_OPTS];
  const char *pos[SP_CLI_MAX_POS];
  size_t npos;
} sp_cli_args;

/* Parses argv[0..argc) (the words after the command name) against spec[0..nspec). "--" ends the options.
 * Fills *out only on SP_OK; SP_EINVAL names the offending word (unknown option, missing value, too many). */
int sp_cli_args_parse(const sp_cli_opt *spec, size_t nspec, int argc, char **argv, sp_cli_args *out,
                      sp_error *err);

/* ---- SQL statement splitting (split.c) -------------------------------------------------------------------- */

/* Returns the offset just past the first ';' of sql[0..len) that is outside string literals ('..' with ''
 * doubling, E'..' with backslash escapes), quoted identifiers (".."), dollar-quoted strings ($tag$..$tag$) and
 * comments (-- to the line end, nested / * .. * /); 0 when there is none yet (not terminated). */
size_t sp_cli_stmt_end(const char *sql, size_t len);

/* True when sql[0..len) holds nothing but white space and closed comments (an open / * comment is not blank:
 * the REPL keeps reading it). */
bool sp_cli_stmt_blank(const char *sql, size_t len);

/* Offset of the first character of sql[0..len) that is neither white space nor part of a closed comment. */
size_t sp_cli_stmt_skip_blank(const char *sql, size_t len);

/* A list of statements, each owned, trimmed of surrounding white space and of its terminating ';'. */
typedef struct sp_cli_stmts {
  char **items;
  size_t count;
} sp_cli_stmts;

/* Splits a script into its statements; blank ones (only white space, comments, ';') are dropped and a final
 * unterminated statement is kept. Caller frees out with sp_cli_stmts_free. */
int sp_cli_split(const char *sql, size_t len, sp_cli_stmts *out, sp_error *err);
void sp_cli_stmts_free(sp_cli_stmts *s);

/* Copies sql[0..len) without surrounding white space. Returns NULL when out of memory. */
char *sp_cli_stmt_trim(const char *sql, size_t len);

/* ---- result tables (table.c) ------------------------------------------------------------------------------ */

/* Column names plus the first `keep` rows of a result; total_rows counts every row seen. Cells are owned UTF-8
 * strings; a NULL cell is an SQL NULL. Zero-initialise, then sp_cli_table_set_columns. */
typedef struct sp_cli_table {
  size_t ncols;
  char **cols;
  char **cells; /* nrows * ncols, row-major */
  size_t nrows, cap_rows;
  size_t keep;       /* rows stored at most; 0 = all */
  size_t total_rows; /* rows added, stored or not */
} sp_cli_table;

/* Copies the names; the table must have no columns yet. */
int sp_cli_table_set_columns(sp_cli_table *t, const char *const *names, size_t ncols, sp_error *err);
/* Adds one row of t->ncols cells (copied; NULL = SQL NULL). Past `keep` rows only total_rows grows. */
int sp_cli_table_add_row(sp_cli_table *t, const char *const *cells, sp_error *err);
void sp_cli_table_reset(sp_cli_table *t);

/* Display width in terminal columns of the UTF-8 text s[0..len): one per code point, two for East Asian wide
 * and fullwidth characters, zero for combining marks; a byte that is not valid UTF-8 counts one. */
size_t sp_cli_text_width(const char *s, size_t len);

typedef struct sp_cli_render_opts {
  size_t max_cell_width; /* cut longer cells with "…"; 0 = no limit */
  size_t max_width;      /* whole table width to fit (a terminal's columns); 0 = no limit */
  size_t max_rows;       /* rows drawn before "... N more rows"; 0 = all stored rows */
} sp_cli_render_opts;

/* Draws an ASCII box table (+---+ borders, the style of Spice's REPL). Control characters in cells are shown
 * escaped (\n, \t, \xNN) so one row stays one line. Rows not drawn are announced as "... N more rows", counting
 * from total_rows. */
void sp_cli_table_print_box(FILE *f, const sp_cli_table *t, const sp_cli_render_opts *o);

/* Draws columns aligned with two spaces between them and the header in upper case, like `kubectl get`. */
void sp_cli_table_print_plain(FILE *f, const sp_cli_table *t);

/* ---- CSV (csv.c): incremental RFC 4180 reader --------------------------------------------------------------- */

/* Called once per record; fields[i] is NULL for an empty unquoted field (CSV's NULL), "" for a quoted one.
 * The strings are only valid during the call. A non-zero return stops the parse with that code. */
typedef int (*sp_cli_csv_record_fn)(void *ctx, const char *const *fields, size_t nfields, sp_error *err);

typedef struct sp_cli_csv {
  sp_cli_csv_record_fn on_record;
  void *ctx;
  /* private */
  int state;
  bool quoted;
  sp_cli_buf field;    /* the field being read */
  sp_cli_buf record;   /* finished fields of the current record, each NUL-terminated */
  size_t *offsets;     /* start of each finished field in record; SIZE_MAX = NULL field */
  size_t nfields, cap_fields;
  const char **views;  /* scratch for the callback */
} sp_cli_csv;

/* Zero-initialises p and sets the callback. */
void sp_cli_csv_init(sp_cli_csv *p, sp_cli_csv_record_fn on_record, void *ctx);
/* Feeds the next bytes; records are delivered as soon as their line ends. Blank lines are skipped. */
int sp_cli_csv_feed(sp_cli_csv *p, const char *data, size_t len, sp_error *err);
/* Delivers a last record without a line end; SP_EINVAL if the input ends inside a quoted field. */
int sp_cli_csv_finish(sp_cli_csv *p, sp_error *err);
void sp_cli_csv_reset(sp_cli_csv *p);

/* A record callback that fills an sp_cli_table (ctx): the first record names the columns, others are rows. */
int sp_cli_csv_to_table(void *ctx, const char *const *fields, size_t nfields, sp_error *err);

/* ---- HTTP (http_client.c) ---------------------------------------------------------------------------------- */

typedef struct sp_cli_conn {
  const char *endpoint; /* "http://127.0.0.1:8090", no trailing slash needed */
  const char *api_key;  /* sent as X-API-Key; NULL = none */
  bool endpoint_given;  /* --http-endpoint was written (spice sql then talks HTTP unless --flight-endpoint is) */
} sp_cli_conn;

typedef struct sp_cli_http_req {
  const char *method; /* "GET", "POST" */
  const char *path;   /* "/v1/status" (already URL-encoded) */
  const char *accept; /* NULL = no Accept header */
  const char *content_type;
  const char *body;
  size_t body_len;
  /* When set, the body of a 2xx response is passed here as it arrives instead of being collected. */
  int (*on_data)(void *ctx, const char *data, size_t len, sp_error *err);
  void *ctx;
} sp_cli_http_req;

typedef struct sp_cli_http_resp {
  long status;
  sp_cli_buf body; /* the whole body, unless on_data took a 2xx body */
  bool cached;     /* X-Cache: Hit… or Results-Cache-Status: HIT */
} sp_cli_http_resp;

/* Sends one request and waits for the whole answer. SP_OK means an HTTP answer arrived, whatever its status.
 * SP_ECONNECT when nothing listens ("could not connect to the Spice runtime at …: is it running? …"),
 * SP_ECANCELED when interrupted, SP_EIO for other transfer failures, or the code on_data returned.
 * Caller frees out->body with sp_cli_buf_reset (also after a failure). */
int sp_cli_http_do(const sp_cli_conn *c, const sp_cli_http_req *r, sp_cli_http_resp *out, sp_error *err);

/* Turns a non-2xx answer into an error: the message is the JSON "message" field when there is one, else the
 * body's text, else "HTTP status N"; the code follows the status (400 EINVAL, 401 EUNAUTH, 404 ENOTFOUND, …). */
int sp_cli_http_fail(const sp_cli_http_resp *r, sp_error *err);

/* Percent-encodes s for use as one path segment. Returns an owned string, NULL when out of memory. */
char *sp_cli_url_segment(const char *s);

/* ---- SQL transports (sql_flight.c, sql_http.c) ------------------------------------------------------------- */

typedef enum sp_cli_format { SP_CLI_FORMAT_TABLE = 0, SP_CLI_FORMAT_CSV, SP_CLI_FORMAT_JSON } sp_cli_format;

/* Parses "table" | "csv" | "json". Returns -1 when unknown. */
int sp_cli_format_parse(const char *s);

/* One query. The caller sets sql, format, out and keep; the transport fills the rest. */
typedef struct sp_cli_query {
  const char *sql;
  sp_cli_format format;
  FILE *out;   /* csv/json: the result bytes are copied here as they arrive */
  int out_last; /* the last byte copied to out, -1 when none (so a missing final newline can be added) */
  size_t keep; /* table: rows to store (the rest is only counted) */
  sp_cli_table table; /* table format: the result; caller frees with sp_cli_table_reset */
  bool cached;
  long http_status;   /* 0 when no HTTP answer */
  bool server_error;  /* the server refused the query (any transport): printed as "Query Error: …" */
  char *error_detail; /* the server's whole error text when it failed; owned, caller frees */
} sp_cli_query;

/* Transports are objects with a method table so `spice sql` does not care how rows travel. */
typedef struct sp_cli_transport sp_cli_transport;
struct sp_cli_transport {
  const char *name;
  int (*query)(sp_cli_transport *self, sp_cli_query *q, sp_error *err);
  void (*destroy)(sp_cli_transport *self);
};

/* Creates the HTTP transport (POST /v1/sql). conn is borrowed and must outlive the transport. */
sp_cli_transport *sp_cli_http_transport_create(const sp_cli_conn *conn, sp_error *err);
/* Creates the Flight transport (GetFlightInfo + DoGet) for endpoint (grpc://host:port, grpc+tls://…; borrowed,
 * must outlive the transport); api_key (may be NULL) is sent as `authorization: Bearer`; ca_file (may be NULL)
 * names a PEM file of CA certificates that verify a TLS endpoint instead of the system's. Reads ca_file, no
 * other I/O yet. */
sp_cli_transport *sp_cli_flight_transport_create(const char *endpoint, const char *api_key, const char *ca_file,
                                                 sp_error *err);

/* ---- SQL sessions (session.c): what the REPL, piped scripts and -e share ------------------------------------ */

/* The REPL's own commands, recognised case-insensitively with or without a trailing ';'. */
typedef enum sp_cli_special {
  SP_CLI_SPECIAL_NONE = 0, /* plain SQL */
  SP_CLI_SPECIAL_EXIT,     /* .exit, exit, quit, q */
  SP_CLI_SPECIAL_HELP,     /* help, .help */
  SP_CLI_SPECIAL_ERROR,    /* .error */
  SP_CLI_SPECIAL_SHOW_TABLES,
} sp_cli_special;

#define SP_CLI_SHOW_TABLES_SQL                                                                              \
  "SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables "             \
  "WHERE table_schema != 'information_schema' ORDER BY table_name"

sp_cli_special sp_cli_special_parse(const char *stmt);

typedef struct sp_cli_session {
  sp_cli_transport *tp; /* borrowed */
  sp_cli_format format;
  FILE *out, *errout;
  bool keep_going;  /* the REPL goes on after an error; scripts and -e stop */
  size_t max_width; /* fit tables to this many columns (a terminal's width); 0 = no limit */
  bool quit;        /* set by an exit command, or by an error when !keep_going */
  size_t failures;
  sp_cli_buf pending; /* input read but not yet terminated by ';' */
  /* the last error, for .error */
  sp_error last_err;
  long last_http;
  char *last_sql;
  char *last_detail;
} sp_cli_session;

/* Sets up s around a borrowed transport, printing to stdout/stderr. Free with sp_cli_session_reset. */
void sp_cli_session_init(sp_cli_session *s, sp_cli_transport *tp, sp_cli_format format);
void sp_cli_session_reset(sp_cli_session *s);
/* Feeds one line of input (without its newline); every statement it completes runs at once. A special command
 * on a line of its own needs no ';'. */
void sp_cli_session_feed_line(sp_cli_session *s, const char *line, size_t len);
/* True while a statement is open (the REPL shows the continuation prompt). */
bool sp_cli_session_open(const sp_cli_session *s);
/* End of input: runs what is left without a ';', then forgets it. */
void sp_cli_session_finish(sp_cli_session *s);
/* Runs one statement or special command and prints its outcome. Returns SP_OK or the error's code. */
int sp_cli_session_run(sp_cli_session *s, const char *stmt);

/* ---- commands: argc/argv are the words after the command name; they return an SP_CLI_EXIT_* code -------- */

int sp_cli_cmd_run(int argc, char **argv, const char *self_path);
int sp_cli_cmd_sql(int argc, char **argv, const sp_cli_conn *defaults);
int sp_cli_cmd_status(int argc, char **argv, const sp_cli_conn *defaults);
int sp_cli_cmd_datasets(int argc, char **argv, const sp_cli_conn *defaults);
int sp_cli_cmd_refresh(int argc, char **argv, const sp_cli_conn *defaults);
int sp_cli_cmd_init(int argc, char **argv);

/* Writes `s` as a YAML scalar: plain when it is safe, else double-quoted with escapes (cmd_init.c). */
void sp_cli_yaml_scalar(FILE *f, const char *s);

/* Shared by the connecting commands: --http-endpoint and --api-key (else SPICE_API_KEY). */
#define SP_CLI_CONN_OPTS {"http-endpoint", 0, true}, {"api-key", 0, true}, {"help", 'h', false}
enum { SP_CLI_OPT_ENDPOINT = 0, SP_CLI_OPT_API_KEY, SP_CLI_OPT_HELP, SP_CLI_OPT_FIRST_OWN };
/* Fills conn from parsed options, falling back to defaults. */
void sp_cli_conn_from_args(const sp_cli_args *a, const sp_cli_conn *defaults, sp_cli_conn *conn);

#endif
