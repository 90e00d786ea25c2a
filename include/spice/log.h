/* SPDX-License-Identifier: Apache-2.0
 *
 * One line per event, level-checked before anything is formatted. Text (default) or JSON lines on stderr.
 *   sp_log_info("dataset \"%s\" loaded %lld rows", name, n);
 * Never pass a secret value to a log call: params flagged SP_PARAM_SECRET are redacted by sp_params_describe.
 * As a last line of defence every secret value the configuration holds is registered with sp_log_redact, and a
 * log line that would contain one shows "***" instead.
 */
#ifndef SPICE_LOG_H
#define SPICE_LOG_H

#include "spice/error.h"

typedef enum sp_log_level { SP_LOG_ERROR = 0, SP_LOG_WARN, SP_LOG_INFO, SP_LOG_DEBUG, SP_LOG_TRACE } sp_log_level;
typedef enum sp_log_format { SP_LOG_TEXT = 0, SP_LOG_JSON } sp_log_format;

extern volatile int sp_log_threshold; /* events above this level are skipped before formatting */

void sp_log_set_level(sp_log_level level);
void sp_log_set_format(sp_log_format format);
/* Parses SPICED_LOG-style values: error|warn|info|debug|trace (case-insensitive). Returns -1 if unknown. */
int sp_log_level_parse(const char *s);
/* Registers a secret value (copied) that no log line may show. Values under 4 bytes are ignored. Thread-safe. */
void sp_log_redact(const char *secret);
void sp_log_write(sp_log_level level, const char *fmt, ...) SP_PRINTF(2, 3);

#define SP_LOG(level, ...)                                                                                  \
  do {                                                                                                      \
    if ((int)(level) <= sp_log_threshold) sp_log_write((level), __VA_ARGS__);                               \
  } while (0)
#define sp_log_error(...) SP_LOG(SP_LOG_ERROR, __VA_ARGS__)
#define sp_log_warn(...) SP_LOG(SP_LOG_WARN, __VA_ARGS__)
#define sp_log_info(...) SP_LOG(SP_LOG_INFO, __VA_ARGS__)
#define sp_log_debug(...) SP_LOG(SP_LOG_DEBUG, __VA_ARGS__)

#endif
