/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice`: the command-line client of the Spice runtime. main() only reads the global options and hands the
 * remaining words to one command (cmd_*.c, repl.c).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "spice: the command-line client of the Spice runtime\n"
    "\n"
    "Usage: spice [global options] COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  run [args...]     start the runtime (spiced) in the current folder\n"
    "  sql               SQL REPL; -e SQL runs one statement; reads a script from a pipe\n"
    "  status            status of the runtime's endpoints\n"
    "  datasets          datasets and their status\n"
    "  refresh DATASET   refresh an accelerated dataset\n"
    "  init [NAME]       write a spicepod.yaml in the current folder\n"
    "  version           show the version\n"
    "  help              show this help\n"
    "\n"
    "Global options (sql, status, datasets and refresh also take them after the command):\n"
    "  --http-endpoint URL   runtime HTTP endpoint (default " SP_CLI_DEFAULT_ENDPOINT ")\n"
    "  --api-key KEY         API key sent as X-API-Key (default: $SPICE_API_KEY)\n"
    "  -h, --help            show this help; `spice COMMAND --help` shows a command's options\n"
    "\n"
    "Run `spice COMMAND --help` for the options of a command.\n";

void sp_cli_conn_from_args(const sp_cli_args *a, const sp_cli_conn *defaults, sp_cli_conn *conn) {
  *conn = *defaults;
  if (a->values[SP_CLI_OPT_ENDPOINT]) conn->endpoint = a->values[SP_CLI_OPT_ENDPOINT], conn->endpoint_given = true;
  if (a->values[SP_CLI_OPT_API_KEY]) conn->api_key = a->values[SP_CLI_OPT_API_KEY];
}

/* Reads the global options in front of the command; returns the index of the command word, or -1 after a
 * usage error (printed). */
static int read_globals(int argc, char **argv, sp_cli_conn *conn, bool *help, bool *version) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *w = argv[i];
    bool endpoint = strcmp(w, "--http-endpoint") == 0, key = strcmp(w, "--api-key") == 0;
    if (endpoint || key) {
      if (i + 1 >= argc) {
        fprintf(stderr, "spice: option \"%s\" needs a value\n\n%s", w, usage);
        return -1;
      }
      *(endpoint ? &conn->endpoint : &conn->api_key) = argv[++i];
      conn->endpoint_given |= endpoint;
    } else if (strncmp(w, "--http-endpoint=", 16) == 0) {
      conn->endpoint = w + 16;
      conn->endpoint_given = true;
    } else if (strncmp(w, "--api-key=", 10) == 0) {
      conn->api_key = w + 10;
    } else if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
      *help = true;
    } else if (strcmp(w, "--version") == 0) {
      *version = true;
    } else {
      fprintf(stderr, "spice: unknown option \"%s\"\n\n%s", w, usage);
      return -1;
    }
  }
  return i;
}

static int print_version(void) {
  printf("CLI version: v%s\n", SPICE_VERSION);
  return SP_CLI_EXIT_OK;
}

/* The path of this executable, for finding spiced next to it. Owned by the caller; NULL if unknown. */
static char *self_path(void) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return NULL;
  buf[n] = '\0';
  return strdup(buf);
}

static int dispatch(const char *cmd, int argc, char **argv, const sp_cli_conn *conn) {
  if (strcmp(cmd, "sql") == 0) return sp_cli_cmd_sql(argc, argv, conn);
  if (strcmp(cmd, "status") == 0) return sp_cli_cmd_status(argc, argv, conn);
  if (strcmp(cmd, "datasets") == 0) return sp_cli_cmd_datasets(argc, argv, conn);
  if (strcmp(cmd, "refresh") == 0) return sp_cli_cmd_refresh(argc, argv, conn);
  if (strcmp(cmd, "init") == 0) return sp_cli_cmd_init(argc, argv);
  if (strcmp(cmd, "version") == 0) return print_version();
  if (strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return SP_CLI_EXIT_OK;
  }
  if (strcmp(cmd, "run") == 0) {
    char *self = self_path();
    int rc = sp_cli_cmd_run(argc, argv, self); /* returns only when spiced could not be started */
    free(self);
    return rc;
  }
  fprintf(stderr, "spice: unknown command \"%s\"\n\n%s", cmd, usage);
  return SP_CLI_EXIT_USAGE;
}

int main(int argc, char **argv) {
  const char *key = getenv("SPICE_API_KEY");
  sp_cli_conn conn = {.endpoint = SP_CLI_DEFAULT_ENDPOINT, .api_key = key && *key ? key : NULL};
  bool help = false, version = false;
  int i = read_globals(argc, argv, &conn, &help, &version);
  if (i < 0) return SP_CLI_EXIT_USAGE;
  if (version) return print_version();
  if (i >= argc) {
    fputs(usage, help ? stdout : stderr);
    return help ? SP_CLI_EXIT_OK : SP_CLI_EXIT_USAGE;
  }
  if (help) {
    char *h[] = {"--help"};
    return dispatch(argv[i], 1, h, &conn);
  }
  return dispatch(argv[i], argc - i - 1, argv + i + 1, &conn);
}
