/* SPDX-License-Identifier: Apache-2.0
 *
 * Logging: one line per event on stderr, written with a single write() so lines from different threads
 * never interleave.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h>

#include "spice/log.h"

volatile int sp_log_threshold = SP_LOG_INFO;
static sp_log_format log_format = SP_LOG_TEXT;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void sp_log_set_level(sp_log_level level) { sp_log_threshold = (int)level; }
void sp_log_set_format(sp_log_format format) { log_format = format; }

int sp_log_level_parse(const char *s) {
  for (int i = 0; i < 5; i++)
    if (strcasecmp(s, level_names[i]) == 0) return i;
  if (strcasecmp(s, "warning") == 0) return SP_LOG_WARN;
  return -1;
}

/* Secret values seen by the configuration (passwords, keys, ${secrets:...} values): any log line that would
 * contain one gets "***" instead. The last line of defence, for messages that quote what a library said
 * (a connection string echoed by a driver, a URL with credentials); code still never logs a secret on purpose.
 * Append-only and deduplicated, so a reload does not grow it. */
#define MAX_REDACTED 256
#define MIN_REDACTED_LEN 4 /* shorter values would blank out ordinary words */
static pthread_mutex_t redact_lock = PTHREAD_MUTEX_INITIALIZER;
static char *redacted[MAX_REDACTED];
static size_t n_redacted;

void sp_log_redact(const char *secret) {
  if (secret == NULL || strlen(secret) < MIN_REDACTED_LEN) return;
  pthread_mutex_lock(&redact_lock);
  bool known = false;
  for (size_t i = 0; i < n_redacted && !known; i++) known = strcmp(redacted[i], secret) == 0;
  if (!known && n_redacted < MAX_REDACTED) {
    char *copy = strdup(secret);
    if (copy) redacted[n_redacted++] = copy;
  }
  pthread_mutex_unlock(&redact_lock);
}

/* Replaces every registered secret in msg (NUL-terminated, capacity cap) by "***" in place. */
static void redact(char *msg, size_t cap) {
  pthread_mutex_lock(&redact_lock);
  for (size_t i = 0; i < n_redacted; i++) {
    size_t slen = strlen(redacted[i]);
    for (char *hit = strstr(msg, redacted[i]); hit != NULL; hit = strstr(hit + 3, redacted[i])) {
      size_t tail = strlen(hit + slen) + 1;
      if ((size_t)(hit - msg) + 3 + tail > cap) break; /* cannot happen: slen >= 4 > 3 */
      memcpy(hit, "***", 3);
      memmove(hit + 3, hit + slen, tail);
    }
  }
  pthread_mutex_unlock(&redact_lock);
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t len, const char *s) {
  for (; *s && len + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[len++] = '\\';
      buf[len++] = (char)c;
    } else if (c < 0x20) {
      len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
    } else {
      buf[len++] = (char)c;
    }
  }
  return len;
}

void sp_log_write(sp_log_level level, const char *fmt, ...) {
  char msg[4096], line[8192 + 64], ts[40];
  struct timespec now;
  struct tm tm;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n_redacted > 0) redact(msg, sizeof msg);
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%06ldZ", now.tv_nsec / 1000);
  size_t len;
  if (log_format == SP_LOG_JSON) {
    len = (size_t)snprintf(line, sizeof line, "{\"timestamp\":\"%s\",\"level\":\"%s\",\"message\":\"", ts,
                           level_names[level]);
    len = json_escape(line, sizeof line - 4, len, msg);
    len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
  } else {
    /* One event, one line: a message that carries newlines (DuckDB's error context) is folded. */
    for (char *p = msg; *p; p++)
      if (*p == '\n' || *p == '\r') *p = ' ';
    len = (size_t)snprintf(line, sizeof line, "%s %5s %s\n", ts, level_names[level], msg);
  }
  if (len >= sizeof line) len = sizeof line - 1;
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
