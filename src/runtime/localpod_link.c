/* SPDX-License-Identifier: Apache-2.0
 *
 * Synchronised refreshes of localpod children (see localpod_link.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtime/localpod_link.h"
#include "spice/log.h"

static int is_localpod(const sp_dataset *d) {
  return d->cmod != NULL && strcmp(d->cmod->name, "localpod") == 0 && d->spec->path != NULL;
}

/* The parent named by a localpod child, or NULL (rt->ds_lock held). */
static sp_dataset *parent_of(sp_runtime *rt, const sp_dataset *child) {
  for (size_t i = 0; i < rt->n; i++)
    if (rt->datasets[i] != child && strcmp(rt->datasets[i]->spec->name, child->spec->path) == 0) return rt->datasets[i];
  return NULL;
}

/* Spice synchronises a child with its parent only when both are accelerated with refresh_mode full. */
static int synchronised(const sp_dataset *parent, const sp_dataset *child) {
  return parent->accelerated && child->accelerated && parent->spec->acceleration.refresh_mode == SP_REFRESH_FULL &&
         child->spec->acceleration.refresh_mode == SP_REFRESH_FULL;
}

static int child_of(const sp_dataset *c, const sp_dataset *parent) {
  return c != parent && is_localpod(c) && strcmp(c->spec->path, parent->spec->name) == 0;
}

/* The parent has a new copy (or, federated, is registered): its synchronised children, and those still waiting
 * for a first copy, refresh now
 * (rt->lock held). A refresh already requested (with its own refresh_sql or mode) is left as it is. */
static void trigger_children(sp_runtime *rt, sp_dataset *parent) {
  for (size_t i = 0; i < rt->n; i++) {
    sp_dataset *c = rt->datasets[i];
    if (!child_of(c, parent) || !(synchronised(parent, c) || !c->ready_once)) continue;
    if (!c->manual) {
      c->manual = 1;
      c->manual_mode = -1;
    }
    sp_log_info("localpod dataset \"%s\" refreshing with its parent \"%s\"", c->spec->name, parent->spec->name);
  }
  pthread_cond_broadcast(&rt->cond);
}

/* The parent failed before it ever loaded: children waiting for it report why (rt->lock held). */
static void report_parent_error(sp_runtime *rt, sp_dataset *parent) {
  for (size_t i = 0; i < rt->n; i++) {
    sp_dataset *c = rt->datasets[i];
    if (!child_of(c, parent) || c->ready_once || c->next_due_ms >= 0) continue;
    c->status = SP_STATUS_ERROR;
    snprintf(c->error, sizeof c->error, "localpod parent dataset \"%s\" has no data: %.900s", parent->spec->name,
             parent->error);
  }
}

/* A child that failed while its parent has no copy yet waits for the parent's first load instead of retrying
 * on its own (rt->lock held). */
static void wait_for_parent(sp_runtime *rt, sp_dataset *child) {
  sp_dataset *parent = parent_of(rt, child);
  if (parent == NULL || parent->ready_once || child->ready_once) return;
  child->attempt = 0;
  child->next_due_ms = -1;
  if (parent->status == SP_STATUS_ERROR) {
    snprintf(child->error, sizeof child->error, "localpod parent dataset \"%s\" has no data: %.900s", parent->spec->name,
             parent->error);
    return;
  }
  child->status = SP_STATUS_INITIALIZING;
  child->error[0] = '\0';
}

void sp__localpod_refreshed(sp_dataset *ds, int rc) {
  sp_runtime *rt = ds->rt;
  pthread_rwlock_rdlock(&rt->ds_lock);
  pthread_mutex_lock(&rt->lock);
  if (rc == SP_OK) trigger_children(rt, ds);
  if (rc != SP_OK && !ds->ready_once) report_parent_error(rt, ds);
  if (rc != SP_OK && is_localpod(ds)) wait_for_parent(rt, ds);
  pthread_mutex_unlock(&rt->lock);
  pthread_rwlock_unlock(&rt->ds_lock);
}
