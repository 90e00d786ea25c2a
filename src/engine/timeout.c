/* SPDX-License-Identifier: Apache-2.0
 *
 * runtime.query.timeout: user queries that run past their deadline are ended.
 *
 * Each session checked out for a user query gets a deadline (sp_engine_session_arm). One watchdog thread
 * sleeps until the earliest deadline of the busy sessions; when one passes it marks the session timed out,
 * sets its stop flag and interrupts its DuckDB connection. The interrupt alone is not enough: a DuckDB worker
 * inside a federated scan may be waiting on a source that stopped answering, and the executor waits for that
 * worker before the query can end. So the scan's connector stream watches the same stop flag (sp_scan.stop)
 * and gives up; then DuckDB's error, whichever it is, is reported as the timeout (query.c).
 *
 * The thread starts with the first non-zero timeout, so engines that never use one (tools, tests) have none.
 */
#include <stdio.h>
#include <time.h>

#include "engine/engine_int.h"
#include "spice/log.h"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sp_engine_session_arm(sp_engine *e, sp_session *s) {
  __atomic_store_n(&s->stop, 0, __ATOMIC_RELEASE);
  s->timed_out = 0;
  s->timeout_ms = e->query_timeout_ms;
  s->deadline_ms = s->timeout_ms > 0 ? mono_ms() + s->timeout_ms : 0;
  if (s->deadline_ms && e->has_watchdog) pthread_cond_signal(&e->watchdog_cv);
}

void sp_engine_session_disarm(sp_engine *e, sp_session *s) {
  pthread_mutex_lock(&e->lock);
  s->deadline_ms = 0;
  pthread_mutex_unlock(&e->lock);
}

volatile int *sp_engine_session_stop(sp_engine *e, idx_t conn_id) {
  volatile int *stop = NULL;
  pthread_mutex_lock(&e->lock);
  for (sp_session *s = e->busy; s != NULL && stop == NULL; s = s->next_busy)
    if (s->conn_id == conn_id) stop = &s->stop;
  pthread_mutex_unlock(&e->lock);
  return stop;
}

volatile int *sp_engine_conn_stop(sp_engine *e, duckdb_connection conn) {
  volatile int *stop = NULL;
  pthread_mutex_lock(&e->lock);
  for (sp_session *s = e->busy; s != NULL && stop == NULL; s = s->next_busy)
    if (s->conn == conn) stop = &s->stop;
  pthread_mutex_unlock(&e->lock);
  return stop;
}

/* "2s", "1.5s", "300s": the timeout as the spicepod would say it. */
static void format_timeout(int64_t ms, char *buf, size_t n) {
  if (ms % 1000 == 0) snprintf(buf, n, "%llds", (long long)(ms / 1000));
  else snprintf(buf, n, "%gs", (double)ms / 1000.0);
}

int sp_engine_session_timed_out(sp_engine *e, sp_session *s, char *msg, size_t n) {
  pthread_mutex_lock(&e->lock);
  int timed_out = s->timed_out;
  int64_t ms = s->timeout_ms;
  pthread_mutex_unlock(&e->lock);
  if (timed_out) {
    char t[32];
    format_timeout(ms, t, sizeof t);
    snprintf(msg, n, "query timed out after %s (runtime.query.timeout)", t);
  }
  return timed_out;
}

/* Ends the busy queries past their deadline; returns the earliest deadline still ahead (0: none). e->lock held. */
static int64_t expire(sp_engine *e, int64_t now) {
  int64_t next = 0;
  for (sp_session *s = e->busy; s != NULL; s = s->next_busy) {
    if (s->deadline_ms == 0 || s->timed_out) continue;
    if (s->deadline_ms <= now) {
      s->timed_out = 1;
      __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
      duckdb_interrupt(s->conn);
      sp_log_warn("a query ran past runtime.query.timeout (%lld ms) and was interrupted", (long long)s->timeout_ms);
    } else if (next == 0 || s->deadline_ms < next) {
      next = s->deadline_ms;
    }
  }
  return next;
}

static void *watchdog_main(void *arg) {
  sp_engine *e = arg;
  pthread_mutex_lock(&e->lock);
  while (!e->closing) {
    int64_t next = expire(e, mono_ms());
    if (next == 0) {
      pthread_cond_wait(&e->watchdog_cv, &e->lock);
    } else {
      struct timespec ts = {.tv_sec = (time_t)(next / 1000), .tv_nsec = (long)(next % 1000) * 1000000L};
      pthread_cond_timedwait(&e->watchdog_cv, &e->lock, &ts);
    }
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

void sp_engine_set_query_timeout(sp_engine *e, int64_t timeout_ms) {
  pthread_mutex_lock(&e->lock);
  e->query_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
  if (e->query_timeout_ms > 0 && !e->has_watchdog && !e->closing) {
    if (pthread_create(&e->watchdog, NULL, watchdog_main, e) == 0) e->has_watchdog = 1;
    else sp_log_error("could not start the query timeout watchdog: runtime.query.timeout is not enforced");
  }
  pthread_mutex_unlock(&e->lock);
}

void sp_engine_watchdog_stop(sp_engine *e) {
  pthread_mutex_lock(&e->lock);
  e->closing = 1;
  int joined = e->has_watchdog;
  e->has_watchdog = 0;
  pthread_cond_signal(&e->watchdog_cv);
  pthread_mutex_unlock(&e->lock);
  if (joined) pthread_join(e->watchdog, NULL);
}
