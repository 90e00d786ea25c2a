/* SPDX-License-Identifier: Apache-2.0
 *
 * Logging: one line per event on stderr, written with a single write() so lines from different threads
 * never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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
