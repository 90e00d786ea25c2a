/* SPDX-License-Identifier: Apache-2.0
 *
 * A SQL session: input arrives line by line (from libedit, from a pipe, or from -e), statements run as soon as
 * their ';' arrives, results and errors are printed. Nothing here knows how the rows travel (sp_cli_transport)
 * nor where the lines come from, so the REPL, scripts and -e behave the same.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

volatile sig_atomic_t sp_cli_interrupted = 0;

static const char help_text[] =
    "Spice SQL REPL commands:\n"
    "  show tables;          list available tables\n"
    "  .error                details of the last error\n"
    "  help                  this help\n"
    "  .exit, exit, quit, q  leave the REPL (or press Ctrl-D)\n"
    "\n"
    "Statements end with ';' and may span several lines. Ctrl-C cancels the running query or the current "
    "input.\n";

/* Lower-cases stmt with runs of white space folded to one space and trailing ';'s and spaces dropped. */
static void normalise(const char *stmt, char *out, size_t cap) {
  size_t n = 0;
  bool space = false;
  for (const char *p = stmt; *p && n + 1 < cap; p++) {
    if (isspace((unsigned char)*p)) {
      space = n > 0;
      continue;
    }
    if (space && n + 2 < cap) out[n++] = ' ';
    space = false;
    out[n++] = (char)tolower((unsigned char)*p);
  }
  while (n > 0 && (out[n - 1] == ';' || out[n - 1] == ' ')) n--;
  out[n] = '\0';
}

sp_cli_special sp_cli_special_parse(const char *stmt) {
  char w[32];
  stmt += sp_cli_stmt_skip_blank(stmt, strlen(stmt));
  if (strlen(stmt) > 64) return SP_CLI_SPECIAL_NONE; /* no command is that long */
  normalise(stmt, w, sizeof w);
  static const struct {
    const char *word;
    sp_cli_special kind;
  } words[] = {
      {".exit", SP_CLI_SPECIAL_EXIT},  {"exit", SP_CLI_SPECIAL_EXIT},   {"quit", SP_CLI_SPECIAL_EXIT},
      {"q", SP_CLI_SPECIAL_EXIT},      {"help", SP_CLI_SPECIAL_HELP},   {".help", SP_CLI_SPECIAL_HELP},
      {".error", SP_CLI_SPECIAL_ERROR}, {"show tables", SP_CLI_SPECIAL_SHOW_TABLES},
  };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (strcmp(w, words[i].word) == 0) return words[i].kind;
  }
  return SP_CLI_SPECIAL_NONE;
}

void sp_cli_session_init(sp_cli_session *s, sp_cli_transport *tp, sp_cli_format format) {
  memset(s, 0, sizeof *s);
  s->tp = tp;
  s->format = format;
  s->out = stdout;
  s->errout = stderr;
}

void sp_cli_session_reset(sp_cli_session *s) {
  sp_cli_buf_reset(&s->pending);
  free(s->last_sql);
  free(s->last_detail);
  s->last_sql = s->last_detail = NULL;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remember_error(sp_cli_session *s, const char *sql, const sp_error *err, sp_cli_query *q) {
  s->failures++;
  s->last_err = *err;
  s->last_http = q->http_status;
  free(s->last_sql);
  free(s->last_detail);
  s->last_sql = strdup(sql);
  s->last_detail = q->error_detail; /* taken over */
  q->error_detail = NULL;
  if (!s->keep_going) s->quit = true;
}

static void report_error(sp_cli_session *s, const sp_error *err, const sp_cli_query *q) {
  if (err->code == SP_ECANCELED) {
    fputs("Query cancelled.\n", s->errout);
  } else if (q->http_status >= 400 || q->server_error) {
    fprintf(s->errout, "Query Error: %s\n", err->msg);
  } else {
    fprintf(s->errout, "%s\n", err->msg); /* not connected, or the transfer broke: not the query's fault */
  }
}

static void print_last_error(sp_cli_session *s) {
  if (s->last_err.code == SP_OK) {
    fputs("No error yet.\n", s->out);
    return;
  }
  fprintf(s->out, "Error: %s", sp_status_name(s->last_err.code));
  if (s->last_http) fprintf(s->out, " (HTTP %ld)", s->last_http);
  fprintf(s->out, "\nQuery: %s\n", s->last_sql ? s->last_sql : "");
  const char *detail = s->last_detail && *s->last_detail ? s->last_detail : s->last_err.msg;
  size_t n = strlen(detail);
  fprintf(s->out, "Message:\n%s%s", detail, n > 0 && detail[n - 1] == '\n' ? "" : "\n");
}

static void print_result(sp_cli_session *s, sp_cli_query *q, double seconds) {
  if (s->format != SP_CLI_FORMAT_TABLE) {
    if (q->out_last >= 0 && q->out_last != '\n') fputc('\n', s->out);
    return;
  }
  sp_cli_render_opts o = {.max_cell_width = SP_CLI_MAX_CELL_WIDTH, .max_width = s->max_width,
                          .max_rows = SP_CLI_MAX_ROWS};
  sp_cli_table_print_box(s->out, &q->table, &o);
  fprintf(s->out, "\nTime: %.6f seconds%s. %zu rows.\n", seconds, q->cached ? " (cached)" : "",
          q->table.total_rows);
}

static int run_sql(sp_cli_session *s, const char *sql) {
  sp_cli_query q = {.sql = sql, .format = s->format, .out = s->out, .keep = SP_CLI_MAX_ROWS};
  sp_error err = {0};
  sp_cli_interrupted = 0;
  double start = now_seconds();
  int rc = s->tp->query(s->tp, &q, &err);
  double seconds = now_seconds() - start;
  if (rc == SP_OK) {
    print_result(s, &q, seconds);
  } else {
    report_error(s, &err, &q);
    remember_error(s, sql, &err, &q);
  }
  fflush(s->out);
  sp_cli_table_reset(&q.table);
  free(q.error_detail);
  return rc;
}

int sp_cli_session_run(sp_cli_session *s, const char *stmt) {
  switch (sp_cli_special_parse(stmt)) {
  case SP_CLI_SPECIAL_EXIT:
    s->quit = true;
    return SP_OK;
  case SP_CLI_SPECIAL_HELP:
    fputs(help_text, s->out);
    return SP_OK;
  case SP_CLI_SPECIAL_ERROR:
    print_last_error(s);
    return SP_OK;
  case SP_CLI_SPECIAL_SHOW_TABLES:
    return run_sql(s, SP_CLI_SHOW_TABLES_SQL);
  default:
    return run_sql(s, stmt);
  }
}

/* Runs every statement completed in s->pending, then drops what is left if it is only blanks and comments. */
static void run_pending(sp_cli_session *s) {
  size_t end;
  while (!s->quit && (end = sp_cli_stmt_end(s->pending.data, s->pending.len)) > 0) {
    bool blank = sp_cli_stmt_blank(s->pending.data, end - 1); /* end - 1: without its ';' */
    char *stmt = blank ? NULL : sp_cli_stmt_trim(s->pending.data, end - 1);
    sp_cli_buf_consume(&s->pending, end);
    if (stmt != NULL) sp_cli_session_run(s, stmt);
    free(stmt);
  }
  if (s->quit || sp_cli_stmt_blank(s->pending.data, s->pending.len)) s->pending.len = 0;
}

void sp_cli_session_feed_line(sp_cli_session *s, const char *line, size_t len) {
  if (s->quit) return;
  if (!sp_cli_session_open(s) && len < 80) {
    char *one = sp_cli_stmt_trim(line, len);
    sp_cli_special kind = one ? sp_cli_special_parse(one) : SP_CLI_SPECIAL_NONE;
    if (kind != SP_CLI_SPECIAL_NONE) sp_cli_session_run(s, one);
    free(one);
    if (kind != SP_CLI_SPECIAL_NONE) return;
  }
  sp_error err;
  if (sp_cli_buf_append(&s->pending, line, len, &err) != SP_OK || sp_cli_buf_putc(&s->pending, '\n', &err)) {
    fprintf(s->errout, "%s\n", err.msg);
    s->pending.len = 0;
    return;
  }
  run_pending(s);
}

bool sp_cli_session_open(const sp_cli_session *s) { return s->pending.len > 0; }

void sp_cli_session_finish(sp_cli_session *s) {
  if (!s->quit && !sp_cli_stmt_blank(s->pending.data, s->pending.len)) {
    char *stmt = sp_cli_stmt_trim(s->pending.data, s->pending.len);
    if (stmt != NULL) sp_cli_session_run(s, stmt);
    free(stmt);
  }
  s->pending.len = 0;
}
