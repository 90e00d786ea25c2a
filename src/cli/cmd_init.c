/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice init [name]`: writes a minimal spicepod.yaml in the current folder. It never overwrites one without
 * --force (O_EXCL, so two concurrent inits cannot both think they created it).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "Usage: spice init [NAME] [--force]\n"
    "\n"
    "Write a spicepod.yaml in the current folder. NAME defaults to the folder's name.\n"
    "\n"
    "Options:\n"
    "  -f, --force   overwrite an existing spicepod.yaml\n"
    "  -h, --help    show this help\n";

enum { OPT_FORCE = 0, OPT_HELP };
static const sp_cli_opt init_opts[] = {{"force", 'f', false}, {"help", 'h', false}};

/* Words YAML 1.1 readers take for booleans or null: they must be quoted to stay strings. */
static bool yaml_special_word(const char *s) {
  static const char *const words[] = {"y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ""};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    if (strcasecmp(s, words[i]) == 0) return true;
  }
  return false;
}

/* A plain scalar is safe when it is made of [A-Za-z0-9_.-/] (plus UTF-8), does not start with a digit, '-' or
 * '.' (numbers, lists, '...'), and is not a special word. */
static bool yaml_plain_ok(const char *s) {
  if (yaml_special_word(s)) return false;
  unsigned char c0 = (unsigned char)s[0];
  if ((c0 >= '0' && c0 <= '9') || c0 == '-' || c0 == '.') return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool ok = *p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '/';
    if (!ok) return false;
  }
  return true;
}

void sp_cli_yaml_scalar(FILE *f, const char *s) {
  if (yaml_plain_ok(s)) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7F) fprintf(f, "\\x%02X", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* The current folder's last path component, or "spicepod" at "/". Owned by the caller. */
static char *folder_name(void) {
  char *cwd = getcwd(NULL, 0);
  if (cwd == NULL) return strdup("spicepod");
  char *base = basename(cwd); /* may point into cwd, so copy it before freeing cwd */
  char *name = strdup(*base ? base : "spicepod");
  free(cwd);
  return name;
}

static int write_pod(const char *name, bool force) {
  int flags = O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL);
  int fd = open("spicepod.yaml", flags, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      fputs("spicepod.yaml already exists in this folder; use --force to overwrite it\n", stderr);
    } else {
      fprintf(stderr, "could not create \"spicepod.yaml\": %s\n", strerror(errno));
    }
    return SP_CLI_EXIT_FAIL;
  }
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    fprintf(stderr, "could not write \"spicepod.yaml\": %s\n", strerror(errno));
    return SP_CLI_EXIT_FAIL;
  }
  fputs("version: v1\nkind: Spicepod\nname: ", f);
  sp_cli_yaml_scalar(f, name);
  fputs("\ndatasets: []\n", f);
  if (fclose(f) != 0) {
    fprintf(stderr, "could not write \"spicepod.yaml\": %s\n", strerror(errno));
    return SP_CLI_EXIT_FAIL;
  }
  printf("Initialized spicepod \"%s\" in spicepod.yaml. Add datasets to it, then start it with `spice run`.\n",
         name);
  return SP_CLI_EXIT_OK;
}

int sp_cli_cmd_init(int argc, char **argv) {
  sp_cli_args a;
  sp_error err;
  if (sp_cli_args_parse(init_opts, 2, argc, argv, &a, &err) != SP_OK) {
    fprintf(stderr, "spice init: %s\n\n%s", err.msg, usage);
    return SP_CLI_EXIT_USAGE;
  }
  if (a.npos > 1) {
    fprintf(stderr, "spice init: too many arguments\n\n%s", usage);
    return SP_CLI_EXIT_USAGE;
  }
  if (a.values[OPT_HELP]) {
    fputs(usage, stdout);
    return SP_CLI_EXIT_OK;
  }
  char *name = a.npos ? strdup(a.pos[0]) : folder_name();
  if (name == NULL) {
    fputs("out of memory\n", stderr);
    return SP_CLI_EXIT_FAIL;
  }
  int rc = write_pod(name, a.values[OPT_FORCE] != NULL);
  free(name);
  return rc;
}
