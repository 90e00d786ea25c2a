/* SPDX-License-Identifier: Apache-2.0
 *
 * The file watcher (acceleration param `file_watcher: enabled`): a dataset whose source is a local file or
 * folder is refreshed when it changes. One inotify descriptor for the runtime; each watched dataset watches
 * the folder that holds its file (so an atomic rename onto the file is seen too). Changes are debounced by
 * 100 ms, as in Spice, then trigger an ordinary manual refresh (which never overlaps a scheduled one).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime_int.h"
#include "spice/log.h"

#define DEBOUNCE_MS 100

typedef struct watch_entry {
  sp_dataset *ds;
  int wd;
  char name[NAME_MAX + 1]; /* the file within the folder; "" = anything in the folder */
  int64_t due_ms;          /* pending refresh time, -1 none */
} watch_entry;

struct sp_watcher {
  sp_runtime *rt;
  int fd;
  watch_entry *entries;
  size_t n;
  pthread_t thread;
  volatile int stop;
};

/* Which folder and file to watch for a dataset: the path its connector reads natively. */
static int watch_target(sp_dataset *ds, char *dir, size_t dn, char *name, size_t nn) {
  char sql[8800], path[4096];
  struct stat st;
  sp_error err = {0};
  if (ds->cmod == NULL || ds->cmod->native_scan == NULL || ds->conn == NULL ||
      ds->cmod->native_scan(ds->conn, sql, sizeof sql, path, sizeof path, &err) != SP_OK || stat(path, &st) != 0)
    return -1;
  if (S_ISDIR(st.st_mode)) {
    snprintf(dir, dn, "%s", path);
    name[0] = '\0';
    return 0;
  }
  char *slash = strrchr(path, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  snprintf(dir, dn, "%s", slash == path ? "/" : path);
  snprintf(name, nn, "%s", slash + 1);
  return 0;
}

static void on_event(sp_watcher *w, const struct inotify_event *ev) {
  for (size_t i = 0; i < w->n; i++) {
    watch_entry *e = &w->entries[i];
    if (e->wd == ev->wd && (e->name[0] == '\0' || (ev->len && strcmp(ev->name, e->name) == 0)))
      e->due_ms = sp__now_ms() + DEBOUNCE_MS;
  }
}

static void *watch_thread(void *arg) {
  sp_watcher *w = arg;
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (!w->stop) {
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, 50) > 0) {
      ssize_t n = read(w->fd, buf, sizeof buf);
      for (char *q = buf; n > 0 && q < buf + n;) {
        const struct inotify_event *ev = (const struct inotify_event *)q;
        on_event(w, ev);
        q += sizeof *ev + ev->len;
      }
    }
    int64_t now = sp__now_ms();
    for (size_t i = 0; i < w->n; i++) {
      watch_entry *e = &w->entries[i];
      if (e->due_ms < 0 || now < e->due_ms) continue;
      e->due_ms = -1;
      sp_error err = {0};
      sp_log_info("dataset \"%s\": source changed, refreshing", e->ds->spec->name);
      if (sp_runtime_refresh(w->rt, e->ds->spec->name, NULL, NULL, &err) != SP_OK)
        sp_log_warn("dataset \"%s\": %s", e->ds->spec->name, err.msg);
    }
  }
  return NULL;
}

int sp__watcher_start(sp_runtime *rt, sp_dataset *const *datasets, size_t n, sp_watcher **out, sp_error *err) {
  *out = NULL;
  size_t wanted = 0;
  for (size_t i = 0; i < n; i++) wanted += datasets[i]->file_watch;
  if (wanted == 0) return SP_OK;
  sp_watcher *w = calloc(1, sizeof *w);
  if (w == NULL || (w->entries = calloc(wanted, sizeof *w->entries)) == NULL) {
    free(w);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  w->rt = rt;
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0) {
    free(w->entries);
    free(w);
    return sp_fail(err, SP_EIO, "could not start the file watcher: %s", strerror(errno));
  }
  for (size_t i = 0; i < n; i++) {
    sp_dataset *ds = datasets[i];
    char dir[4096];
    watch_entry *e = &w->entries[w->n];
    if (!ds->file_watch) continue;
    if (watch_target(ds, dir, sizeof dir, e->name, sizeof e->name) != 0) {
      sp_log_warn("dataset \"%s\": file_watcher needs a local file source that exists; not watching", ds->spec->name);
      continue;
    }
    e->wd = inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
    if (e->wd < 0) {
      sp_log_warn("dataset \"%s\": cannot watch \"%s\": %s", ds->spec->name, dir, strerror(errno));
      continue;
    }
    e->ds = ds;
    e->due_ms = -1;
    w->n++;
    sp_log_info("dataset \"%s\": watching \"%s/%s\" for changes", ds->spec->name, dir, e->name);
  }
  if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
    close(w->fd);
    free(w->entries);
    free(w);
    return sp_fail(err, SP_EINTERNAL, "could not start the file watcher thread");
  }
  *out = w;
  return SP_OK;
}

void sp__watcher_stop(sp_watcher *w) {
  if (w == NULL) return;
  w->stop = 1;
  pthread_join(w->thread, NULL);
  close(w->fd);
  free(w->entries);
  free(w);
}
