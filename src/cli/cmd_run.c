/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice run [args...]`: replaces the CLI with spiced in the current folder. The spiced installed next to this
 * spice binary wins over one on PATH, so a build folder or an unpacked release runs its own pair.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* "<folder of self_path>/spiced" when that file is executable; NULL otherwise. Owned by the caller. */
static char *sibling_spiced(const char *self_path) {
  if (self_path == NULL) return NULL;
  const char *slash = strrchr(self_path, '/');
  if (slash == NULL) return NULL;
  size_t dir = (size_t)(slash - self_path);
  char *path = malloc(dir + sizeof "/spiced");
  if (path == NULL) return NULL;
  snprintf(path, dir + sizeof "/spiced", "%.*s/spiced", (int)dir, self_path);
  if (access(path, X_OK) == 0) return path;
  free(path);
  return NULL;
}

int sp_cli_cmd_run(int argc, char **argv, const char *self_path) {
  if (argc == 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
    puts("Usage: spice run [spiced arguments...]\n\n"
         "Start the Spice runtime (spiced) in the current folder, which holds spicepod.yaml.\n"
         "Arguments are passed to spiced as they are, e.g. `spice run --http 127.0.0.1:8091`;\n"
         "--pods-watcher-enabled is added, so edits of spicepod.yaml are applied without a restart.\n"
         "spiced is looked for next to the spice binary first, then on PATH.");
    return SP_CLI_EXIT_OK;
  }
  if (access("spicepod.yaml", F_OK) != 0 && access("spicepod.yml", F_OK) != 0) {
    fputs("warning: no spicepod.yaml in this folder (create one with `spice init`)\n", stderr);
  }
  char **args = calloc((size_t)argc + 3, sizeof *args);
  if (args == NULL) {
    fputs("out of memory\n", stderr);
    return SP_CLI_EXIT_FAIL;
  }
  args[0] = "spiced";
  for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
  args[argc + 1] = "--pods-watcher-enabled"; /* as Spice's CLI does: edits of spicepod.yaml apply at once */
  char *sibling = sibling_spiced(self_path);
  fflush(NULL);
  if (sibling != NULL) {
    execv(sibling, args);
    fprintf(stderr, "could not start \"%s\": %s\n", sibling, strerror(errno));
  } else {
    execvp("spiced", args);
    if (errno == ENOENT) {
      fputs("could not find spiced next to spice or on PATH: install the Spice runtime\n", stderr);
    } else {
      fprintf(stderr, "could not start \"spiced\": %s\n", strerror(errno));
    }
  }
  free(sibling);
  free(args);
  return SP_CLI_EXIT_FAIL;
}
