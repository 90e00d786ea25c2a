/* SPDX-License-Identifier: Apache-2.0
 *
 * A small option parser of our own: getopt_long permutes argv and keeps global state, and `spice run` must pass
 * its words through untouched, so each command parses exactly the words it owns.
 */
#include <string.h>

#include "cli/cli.h"

static int find_long(const sp_cli_opt *spec, size_t nspec, const char *name, size_t len) {
  for (size_t i = 0; i < nspec; i++) {
    if (strlen(spec[i].long_name) == len && strncmp(spec[i].long_name, name, len) == 0) return (int)i;
  }
  return -1;
}

static int find_short(const sp_cli_opt *spec, size_t nspec, char c) {
  for (size_t i = 0; i < nspec; i++) {
    if (spec[i].short_name != 0 && spec[i].short_name == c) return (int)i;
  }
  return -1;
}

/* `--name`, `--name=value` or `--name value`; *i is advanced past a separate value. */
static int parse_long(const sp_cli_opt *spec, size_t nspec, int argc, char **argv, int *i, sp_cli_args *a,
                      sp_error *err) {
  const char *word = argv[*i] + 2;
  const char *eq = strchr(word, '=');
  size_t len = eq ? (size_t)(eq - word) : strlen(word);
  int k = find_long(spec, nspec, word, len);
  if (k < 0) return sp_fail(err, SP_EINVAL, "unknown option \"--%.*s\"", (int)len, word);
  if (!spec[k].has_arg) {
    if (eq) return sp_fail(err, SP_EINVAL, "option \"--%s\" takes no value", spec[k].long_name);
    a->values[k] = "";
    return SP_OK;
  }
  if (eq) {
    a->values[k] = eq + 1;
    return SP_OK;
  }
  if (*i + 1 >= argc) return sp_fail(err, SP_EINVAL, "option \"--%s\" needs a value", spec[k].long_name);
  a->values[k] = argv[++*i];
  return SP_OK;
}

/* `-x`, `-xVALUE` or `-x VALUE`; several flags may share one dash (`-hf`). */
static int parse_short(const sp_cli_opt *spec, size_t nspec, int argc, char **argv, int *i, sp_cli_args *a,
                       sp_error *err) {
  for (const char *p = argv[*i] + 1; *p != '\0'; p++) {
    int k = find_short(spec, nspec, *p);
    if (k < 0) return sp_fail(err, SP_EINVAL, "unknown option \"-%c\"", *p);
    if (!spec[k].has_arg) {
      a->values[k] = "";
      continue;
    }
    if (p[1] != '\0') {
      a->values[k] = p + 1;
    } else if (*i + 1 < argc) {
      a->values[k] = argv[++*i];
    } else {
      return sp_fail(err, SP_EINVAL, "option \"-%c\" needs a value", *p);
    }
    return SP_OK;
  }
  return SP_OK;
}

static int add_positional(sp_cli_args *a, const char *word, sp_error *err) {
  if (a->npos >= SP_CLI_MAX_POS) return sp_fail(err, SP_EINVAL, "too many arguments at \"%s\"", word);
  a->pos[a->npos++] = word;
  return SP_OK;
}

int sp_cli_args_parse(const sp_cli_opt *spec, size_t nspec, int argc, char **argv, sp_cli_args *out,
                      sp_error *err) {
  if (nspec > SP_CLI_MAX_OPTS) return sp_fail(err, SP_EINVAL, "too many options declared (%zu)", nspec);
  sp_cli_args a;
  memset(&a, 0, sizeof a);
  bool options_done = false;
  for (int i = 0; i < argc; i++) {
    const char *word = argv[i];
    if (options_done || word[0] != '-' || word[1] == '\0') {
      SP_TRY(add_positional(&a, word, err));
    } else if (strcmp(word, "--") == 0) {
      options_done = true;
    } else if (word[1] == '-') {
      SP_TRY(parse_long(spec, nspec, argc, argv, &i, &a, err));
    } else {
      SP_TRY(parse_short(spec, nspec, argc, argv, &i, &a, err));
    }
  }
  *out = a;
  return SP_OK;
}
