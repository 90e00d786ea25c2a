/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spice/error.h"

int sp_failv(sp_error *err, sp_status code, const char *fmt, va_list ap) {
  if (err != NULL) {
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  }
  return (int)code;
}

int sp_fail(sp_error *err, sp_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sp_failv(err, code, fmt, ap);
  va_end(ap);
  return (int)code;
}

void sp_error_prefix(sp_error *err, const char *fmt, ...) {
  if (err == NULL) return;
  char prefix[512], old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

void sp_error_clear(sp_error *err) {
  if (err == NULL) return;
  err->code = SP_OK;
  err->msg[0] = '\0';
}

const char *sp_status_name(sp_status code) {
  static const char *const names[SP_STATUS_COUNT] = {
      [SP_OK] = "OK",           [SP_ENOMEM] = "ENOMEM",     [SP_EINVAL] = "EINVAL",
      [SP_ENOTFOUND] = "ENOTFOUND", [SP_EIO] = "EIO",       [SP_ECONNECT] = "ECONNECT",
      [SP_ETIMEDOUT] = "ETIMEDOUT", [SP_ENOTSUP] = "ENOTSUP", [SP_EDENIED] = "EDENIED",
      [SP_EUNAUTH] = "EUNAUTH", [SP_EBUSY] = "EBUSY",       [SP_ECANCELED] = "ECANCELED",
      [SP_EINTERNAL] = "EINTERNAL",
  };
  return (unsigned)code < SP_STATUS_COUNT ? names[code] : "EUNKNOWN";
}

sp_status sp_status_from_errno(int e, sp_status fallback) {
  switch (e) {
  case ENOMEM: return SP_ENOMEM;
  case ETIMEDOUT: return SP_ETIMEDOUT;
  case ECANCELED: return SP_ECANCELED;
  default: return fallback;
  }
}

int sp_status_is_retriable(sp_status code) {
  return code == SP_ECONNECT || code == SP_ETIMEDOUT || code == SP_EIO || code == SP_ENOTFOUND || code == SP_EBUSY;
}
