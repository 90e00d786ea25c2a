/* SPDX-License-Identifier: Apache-2.0
 *
 * API keys on Flight (runtime.auth.api-key, spice-compat §5): every RPC but Handshake needs
 * `authorization: Bearer <key>` (or `x-api-key: <key>`) in its metadata. Handshake is Flight's basic auth:
 * the client sends `authorization: Basic base64(user:password)` (or a BasicAuth message as the payload of
 * its first HandshakeRequest); the user name is ignored and the password must be a key; the answer carries
 * `authorization: Bearer <key>` in its initial metadata, the token later calls present. Keys are compared by
 * sp_http_key_valid (constant time, shared with the HTTP API) and never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/flight_int.h"
#include "spice/log.h"

#define DENIED "Access denied. Invalid credentials."

static bool key_ok(const fl_call *c, const char *k, size_t n) {
  return k != NULL && n > 0 && sp_http_key_valid(&c->srv->cfg, k, n);
}

/* The token after "<scheme> " in the authorization metadata, or NULL. */
static const char *auth_token(const fl_call *c, const char *scheme, size_t *n) {
  size_t len, sl = strlen(scheme);
  const char *a = sp__flight_md(c, "authorization", &len);
  if (a == NULL || len <= sl || strncasecmp(a, scheme, sl) != 0 || a[sl] != ' ') return NULL;
  a += sl;
  len -= sl;
  while (len > 0 && *a == ' ') a++, len--;
  *n = len;
  return a;
}

bool sp__flight_authorized(const fl_call *c) {
  if (!c->srv->cfg.auth_enabled) return true;
  size_t n;
  const char *k = sp__flight_md(c, "x-api-key", &n);
  if (key_ok(c, k, n)) return true;
  k = auth_token(c, "Bearer", &n);
  return key_ok(c, k, n);
}

static int b64_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+' || ch == '-') return 62;
  if (ch == '/' || ch == '_') return 63;
  return -1;
}

/* Decodes base64 (padding optional) into out (at most cap bytes); the decoded length, or -1 when malformed. */
static long b64_decode(const char *in, size_t n, char *out, size_t cap) {
  size_t len = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == '=') break;
    int v = b64_value((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (len == cap) return -1;
      out[len++] = (char)((acc >> bits) & 0xff);
    }
  }
  return (long)len;
}

/* The password of `Basic base64(user:password)`, copied into pw (cap bytes); its length or -1. */
static long basic_password(const fl_call *c, char *pw, size_t cap) {
  size_t n;
  const char *t = auth_token(c, "Basic", &n);
  char plain[1024];
  long len = t ? b64_decode(t, n, plain, sizeof plain) : -1;
  const char *colon = len > 0 ? memchr(plain, ':', (size_t)len) : NULL;
  if (colon == NULL) return -1;
  size_t plen = (size_t)(plain + len - (colon + 1));
  if (plen >= cap) return -1;
  memcpy(pw, colon + 1, plen);
  return (long)plen;
}

/* The key a Handshake presents (basic auth metadata, a bearer token, or a BasicAuth{username=2, password=3}
 * payload), copied into key (cap bytes); its length, or -1 when none is valid. */
static long handshake_key(const fl_call *c, sp_pb_bytes payload, char *key, size_t cap) {
  long n = basic_password(c, key, cap);
  if (n > 0 && key_ok(c, key, (size_t)n)) return n;
  size_t bn;
  const char *b = auth_token(c, "Bearer", &bn);
  if (b && bn < cap && key_ok(c, b, bn)) {
    memcpy(key, b, bn);
    return (long)bn;
  }
  sp_pb_msg m;
  if (payload.len && sp_flight_decode_fields(payload.data, payload.len, &m, NULL) == SP_OK &&
      (m.present & (1u << 3)) && m.bytes[3].len < cap && key_ok(c, (const char *)m.bytes[3].data, m.bytes[3].len)) {
    memcpy(key, m.bytes[3].data, m.bytes[3].len);
    return (long)m.bytes[3].len;
  }
  return -1;
}

/* Answers one HandshakeRequest (in, consumed); 0 when the call is over. The first one decides the auth. */
static int handshake_step(fl_call *c, grpc_byte_buffer *in, bool first, grpc_byte_buffer **next) {
  sp_error err = {0};
  grpc_slice req = sp__flight_request(in);
  grpc_byte_buffer_destroy(in);
  uint64_t version;
  sp_pb_bytes payload;
  int rc = sp_flight_decode_handshake(GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req), &version, &payload, &err);
  if (rc == SP_OK && first && c->srv->cfg.auth_enabled) {
    char key[512];
    long n = handshake_key(c, payload, key, sizeof key - 1);
    if (n < 0) rc = sp_fail(&err, SP_EUNAUTH, DENIED);
    else {
      char bearer[600];
      snprintf(bearer, sizeof bearer, "Bearer %.*s", (int)n, key);
      sp__flight_add_md(c, "authorization", bearer);
    }
  }
  grpc_slice_unref(req);
  sp_buf resp = {0};
  if (rc == SP_OK) rc = sp_flight_encode_handshake(version, NULL, 0, &resp, &err);
  if (rc != SP_OK) {
    sp_buf_free(&resp);
    sp__flight_error(c, &err);
    return 0;
  }
  int ok = sp__flight_send_buf(c, resp.data, resp.len, -1);
  sp_buf_free(&resp);
  return ok && sp__flight_recv(c, next);
}

/* Bidi: answers each HandshakeRequest with an empty HandshakeResponse until the client half-closes. */
void sp__flight_handshake(fl_call *c) {
  grpc_byte_buffer *in = NULL;
  if (!sp__flight_recv(c, &in)) return;
  if (in == NULL && c->srv->cfg.auth_enabled) { /* no request at all: the metadata alone decides */
    char key[512], bearer[600];
    long n = handshake_key(c, (sp_pb_bytes){0}, key, sizeof key - 1);
    if (n < 0) {
      sp__flight_status(c, GRPC_STATUS_UNAUTHENTICATED, DENIED);
      return;
    }
    snprintf(bearer, sizeof bearer, "Bearer %.*s", (int)n, key);
    sp__flight_add_md(c, "authorization", bearer);
  }
  for (bool first = true; in != NULL; first = false) {
    grpc_byte_buffer *next = NULL;
    if (!handshake_step(c, in, first, &next)) return;
    in = next;
  }
  sp__flight_status(c, GRPC_STATUS_OK, "");
}
