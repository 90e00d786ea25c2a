/* SPDX-License-Identifier: Apache-2.0
 *
 * The error convention of spicec. Functions return SP_OK (0) or an sp_status code; the message goes into a
 * caller-supplied sp_error (always the last parameter, NULL allowed). Only the failing layer formats the
 * message; upper layers may prefix context with sp_error_prefix(). Out-parameters are filled only on SP_OK.
 *
 * Messages follow PostgreSQL's style: lower case, no trailing period, the object named in quotes:
 *   could not open file "taxi.parquet" for dataset "trips": No such file or directory
 */
#ifndef SPICE_ERROR_H
#define SPICE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define SP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SP_PRINTF(fmt, args)
#endif

typedef enum sp_status {
  SP_OK = 0,
  SP_ENOMEM,      /* allocation failed */
  SP_EINVAL,      /* bad input from a user: spicepod, SQL, request body */
  SP_ENOTFOUND,   /* unknown dataset, table, file */
  SP_EIO,         /* read/write failure of a file or a source */
  SP_ECONNECT,    /* a source cannot be reached (retriable) */
  SP_ETIMEDOUT,   /* a deadline passed (retriable) */
  SP_ENOTSUP,     /* the module or the engine does not support this */
  SP_EDENIED,     /* refused by the sandbox or by a read-only dataset */
  SP_EUNAUTH,     /* missing or wrong credentials */
  SP_EBUSY,       /* not ready yet, or shutting down */
  SP_ECANCELED,   /* stopped on request */
  SP_EINTERNAL,   /* a bug or an engine failure that is not the user's fault */
  SP_STATUS_COUNT
} sp_status;

typedef struct sp_error {
  sp_status code;
  char msg[1024];
} sp_error;

/* Formats the message into err (NULL allowed) and returns code, so `return sp_fail(err, ...)` reads well. */
int sp_fail(sp_error *err, sp_status code, const char *fmt, ...) SP_PRINTF(3, 4);
int sp_failv(sp_error *err, sp_status code, const char *fmt, va_list ap);

/* Prepends "<context>: " to err->msg (e.g. the dataset name); keeps the code. NULL-safe. */
void sp_error_prefix(sp_error *err, const char *fmt, ...) SP_PRINTF(2, 3);

/* Resets err to SP_OK and an empty message. NULL-safe. */
void sp_error_clear(sp_error *err);

/* Stable name of a status code ("EINVAL"), for logs and tests. */
const char *sp_status_name(sp_status code);

/* True for errors worth retrying later (a source that is down or slow). */
int sp_status_is_retriable(sp_status code);

/* The status of an errno-style code from an Arrow stream's get_schema/get_next: ENOMEM, ETIMEDOUT (a query past
 * runtime.query.timeout) and ECANCELED keep their meaning, anything else is `fallback`. */
sp_status sp_status_from_errno(int e, sp_status fallback);

#define SP_TRY(expr)                                                                                        \
  do {                                                                                                      \
    int sp__rc = (expr);                                                                                    \
    if (sp__rc != SP_OK) return sp__rc;                                                                     \
  } while (0)

#endif
