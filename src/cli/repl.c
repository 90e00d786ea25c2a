/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice sql`: the interactive REPL (libedit, history in ~/.spice/sql_history), SQL read from a pipe, or one
 * statement given with -e. All three feed an sp_cli_session; only where the lines come from differs.
 */
#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

static const char banner[] =
    "Welcome to the Spice.ai SQL REPL! Type 'help' for help.\n\nshow tables; -- list available tables\n";

static const char usage[] =
    "Usage: spice sql [options]\n"
    "\n"
    "Start an interactive SQL REPL against the Spice runtime. When stdin is not a terminal, read SQL statements\n"
    "from it and run them in order, stopping at the first error.\n"
    "\n"
    "Options:\n"
    "  -e, --execute SQL       run SQL (statements separated by ';') and exit; exit code 1 on error\n"
    "      --format FORMAT     table (default), csv or json\n"
    "      --flight-endpoint URL  runtime Flight endpoint (default " SP_CLI_DEFAULT_FLIGHT_ENDPOINT ")\n"
    "      --tls-root-certificate-file FILE  CA certificates (PEM) for a grpc+tls:// Flight endpoint\n"
    "      --http              query over HTTP POST /v1/sql instead of Flight\n"
    "      --http-endpoint URL runtime HTTP endpoint (default " SP_CLI_DEFAULT_ENDPOINT "); given without\n"
    "                          --flight-endpoint, it makes the queries go over HTTP\n"
    "      --api-key KEY       API key (Flight: authorization: Bearer; HTTP: X-API-Key; default: $SPICE_API_KEY)\n"
    "  -h, --help              show this help\n";

enum { OPT_FORMAT = SP_CLI_OPT_FIRST_OWN, OPT_EXECUTE, OPT_FLIGHT_ENDPOINT, OPT_HTTP, OPT_TLS_ROOT };
static const sp_cli_opt sql_opts[] = {SP_CLI_CONN_OPTS, {"format", 0, true}, {"execute", 'e', true},
                                      {"flight-endpoint", 0, true}, {"http", 0, false},
                                      {"tls-root-certificate-file", 0, true}};

static void on_sigint(int sig) {
  (void)sig;
  sp_cli_interrupted = 1;
}

/* Ctrl-C stops the running query (curl polls the flag) or drops the current input; it never ends the REPL. */
static void catch_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a blocked read returns EINTR */
}

static char *prompt(EditLine *el) {
  sp_cli_session *s = NULL;
  el_get(el, EL_CLIENTDATA, &s);
  return s != NULL && sp_cli_session_open(s) ? "  -> " : "sql> ";
}

/* ~/.spice/sql_history, creating ~/.spice; NULL when there is no home folder. */
static char *history_path(void) {
  const char *home = getenv("HOME");
  if (home == NULL || *home == '\0') {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : NULL;
  }
  if (home == NULL) return NULL;
  size_t n = strlen(home) + sizeof "/.spice/sql_history";
  char *path = malloc(n);
  if (path == NULL) return NULL;
  snprintf(path, n, "%s/.spice", home);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    free(path);
    return NULL;
  }
  snprintf(path, n, "%s/.spice/sql_history", home);
  return path;
}

/* libedit reads multibyte input only under a UTF-8 locale; fall back to C.UTF-8 when the environment has none. */
static void use_utf8_locale(void) {
  const char *l = setlocale(LC_CTYPE, "");
  if (l == NULL || strcmp(l, "C") == 0 || strcmp(l, "POSIX") == 0) setlocale(LC_CTYPE, "C.UTF-8");
}

static size_t terminal_width(void) {
  struct winsize ws;
  if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  return ws.ws_col;
}

typedef struct repl {
  EditLine *el;
  History *hist;
  char *hist_path;
  sp_cli_buf entry; /* the lines of the statement being typed, entered into history once it is complete */
} repl;

static void repl_open(repl *r, sp_cli_session *s) {
  HistEvent ev;
  r->hist = history_init();
  history(r->hist, &ev, H_SETSIZE, 1000);
  history(r->hist, &ev, H_SETUNIQUE, 1);
  r->hist_path = history_path();
  if (r->hist_path) history(r->hist, &ev, H_LOAD, r->hist_path);
  r->el = el_init("spice", stdin, stdout, stderr);
  el_set(r->el, EL_EDITOR, "emacs");
  el_set(r->el, EL_HIST, history, r->hist);
  el_set(r->el, EL_CLIENTDATA, s);
  el_set(r->el, EL_PROMPT, prompt);
  el_set(r->el, EL_SIGNAL, 1);
  el_source(r->el, NULL); /* ~/.editrc */
}

static void repl_close(repl *r) {
  el_end(r->el);
  history_end(r->hist);
  free(r->hist_path);
  sp_cli_buf_reset(&r->entry);
}

static void remember_entry(repl *r) {
  if (sp_cli_stmt_blank(r->entry.data, r->entry.len)) {
    r->entry.len = 0;
    return;
  }
  while (r->entry.len > 0 && r->entry.data[r->entry.len - 1] == '\n') r->entry.data[--r->entry.len] = '\0';
  HistEvent ev;
  history(r->hist, &ev, H_ENTER, r->entry.data);
  if (r->hist_path) history(r->hist, &ev, H_SAVE, r->hist_path);
  r->entry.len = 0;
}

static void repl_line(repl *r, sp_cli_session *s, const char *line, int count) {
  size_t len = (size_t)count;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
  sp_cli_buf_append(&r->entry, line, len, NULL);
  sp_cli_buf_putc(&r->entry, '\n', NULL);
  s->max_width = terminal_width();
  sp_cli_session_feed_line(s, line, len);
  if (!sp_cli_session_open(s)) remember_entry(r);
}

static int run_repl(sp_cli_session *s) {
  use_utf8_locale();
  repl r = {0};
  repl_open(&r, s);
  catch_sigint();
  fputs(banner, stdout);
  while (!s->quit) {
    int count = 0;
    sp_cli_interrupted = 0;
    const char *line = el_gets(r.el, &count);
    if (line == NULL && sp_cli_interrupted) { /* Ctrl-C at the prompt: drop the statement being typed */
      fputc('\n', stdout);
      s->pending.len = 0;
      r.entry.len = 0;
      continue;
    }
    if (line == NULL || count <= 0) break; /* Ctrl-D */
    repl_line(&r, s, line, count);
  }
  if (!s->quit) fputc('\n', stdout);
  repl_close(&r);
  return SP_CLI_EXIT_OK;
}

static int run_stream(sp_cli_session *s, FILE *in) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while (!s->quit && (n = getline(&line, &cap, in)) >= 0) {
    size_t len = (size_t)n;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    sp_cli_session_feed_line(s, line, len);
  }
  free(line);
  sp_cli_session_finish(s);
  return s->failures ? SP_CLI_EXIT_FAIL : SP_CLI_EXIT_OK;
}

static int run_execute(sp_cli_session *s, const char *sql) {
  sp_cli_stmts stmts;
  sp_error err;
  if (sp_cli_split(sql, strlen(sql), &stmts, &err) != SP_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return SP_CLI_EXIT_FAIL;
  }
  for (size_t i = 0; i < stmts.count && !s->quit; i++) sp_cli_session_run(s, stmts.items[i]);
  sp_cli_stmts_free(&stmts);
  return s->failures ? SP_CLI_EXIT_FAIL : SP_CLI_EXIT_OK;
}

int sp_cli_cmd_sql(int argc, char **argv, const sp_cli_conn *defaults) {
  sp_cli_args a;
  sp_error err;
  if (sp_cli_args_parse(sql_opts, sizeof sql_opts / sizeof sql_opts[0], argc, argv, &a, &err) != SP_OK) {
    fprintf(stderr, "spice sql: %s\n\n%s", err.msg, usage);
    return SP_CLI_EXIT_USAGE;
  }
  if (a.values[SP_CLI_OPT_HELP]) {
    fputs(usage, stdout);
    return SP_CLI_EXIT_OK;
  }
  int format = a.values[OPT_FORMAT] ? sp_cli_format_parse(a.values[OPT_FORMAT]) : SP_CLI_FORMAT_TABLE;
  if (format < 0 || a.npos > 0) {
    fprintf(stderr, "spice sql: %s \"%s\"\n\n%s", format < 0 ? "unknown format" : "unexpected argument",
            format < 0 ? a.values[OPT_FORMAT] : a.pos[0], usage);
    return SP_CLI_EXIT_USAGE;
  }
  sp_cli_conn conn;
  sp_cli_conn_from_args(&a, defaults, &conn);
  /* Flight unless --http, or an --http-endpoint without a --flight-endpoint (scripts that name the HTTP
   * endpoint keep talking to it, rather than to a default Flight port that may be someone else's). */
  const char *flight = a.values[OPT_FLIGHT_ENDPOINT] ? a.values[OPT_FLIGHT_ENDPOINT] : SP_CLI_DEFAULT_FLIGHT_ENDPOINT;
  bool http = a.values[OPT_HTTP] || (conn.endpoint_given && !a.values[OPT_FLIGHT_ENDPOINT]);
  sp_cli_transport *tp = http ? sp_cli_http_transport_create(&conn, &err)
                              : sp_cli_flight_transport_create(flight, conn.api_key, a.values[OPT_TLS_ROOT], &err);
  if (tp == NULL) {
    fprintf(stderr, "%s\n", err.msg);
    return SP_CLI_EXIT_FAIL;
  }
  sp_cli_session s;
  sp_cli_session_init(&s, tp, (sp_cli_format)format);
  int rc;
  if (a.values[OPT_EXECUTE]) {
    rc = run_execute(&s, a.values[OPT_EXECUTE]);
  } else if (isatty(STDIN_FILENO)) {
    s.keep_going = true;
    rc = run_repl(&s);
  } else {
    rc = run_stream(&s, stdin);
  }
  sp_cli_session_reset(&s);
  tp->destroy(tp);
  return rc;
}
