/* SPDX-License-Identifier: Apache-2.0
 *
 * Replays saved inputs through a fuzz target without libFuzzer, so the normal unit suite (gcc or clang, with
 * or without sanitizers) re-checks the seed corpus and every crash found so far:
 *
 *   replay_<name> tests/fuzz/corpus/<name> tests/fuzz/regressions/<name> [file ...]
 *
 * Each argument is a file or a folder whose files (not sub-folders, not dot-files) are replayed in name order.
 * Every input is copied into a buffer of exactly its size, as libFuzzer does, so a sanitizer catches a read
 * past the end. A crash or abort in the target fails the run; a missing path or an unreadable file too, so a
 * typo cannot make the replay pass on nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target (libFuzzer calls it once before the first input when it is defined). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads the whole file at path into a new buffer of exactly its size (NULL for an empty file); the caller
 * frees *out. Returns 0, or -1 with a message printed. */
static int read_input(const char *path, uint8_t **out, size_t *size) {
  *out = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if (nb == NULL) {
        rc = -1;
        break;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f)) rc = -1;
      break;
    }
  }
  fclose(f);
  if (rc != 0) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    return -1;
  }
  if (len > 0) {
    *out = malloc(len); /* exact size: the target must not read past it */
    if (*out == NULL) rc = -1;
    else memcpy(*out, buf, len);
  }
  free(buf);
  *size = len;
  return rc;
}

static int replay_file(const char *path) {
  uint8_t *data;
  size_t size;
  if (read_input(path, &data, &size) != 0) return -1;
  printf("replay: %s (%zu bytes)\n", path, size);
  fflush(stdout); /* the last line names the culprit if the target aborts */
  LLVMFuzzerTestOneInput(data ? data : (const uint8_t *)"", size);
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays the regular files of dir in name order; adds their number to *count. */
static int replay_dir(const char *dir, size_t *count) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open folder %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue; /* ., .. and .gitkeep */
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **nn = realloc(names, cap * sizeof *nn);
      if (nn == NULL) rc = -1;
      else names = nn;
    }
    if (rc == 0 && asprintf(&names[n], "%s/%s", dir, e->d_name) < 0) rc = -1;
    if (rc == 0) n++;
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      rc = replay_file(names[i]);
      if (rc == 0) (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize != NULL) LLVMFuzzerInitialize(&argc, &argv);
  size_t count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    int rc = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i]);
    if (rc != 0) return 1;
    if (!S_ISDIR(st.st_mode)) count++;
  }
  printf("replay: %zu inputs, no crash\n", count);
  return 0;
}
