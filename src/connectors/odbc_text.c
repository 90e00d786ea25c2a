/* SPDX-License-Identifier: Apache-2.0
 *
 * ODBC connection strings and UTF-16 (see odbc_text.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connectors/odbc_text.h"

/* One KEY=value attribute of a connection string: the spans of its key and of its value (braces included). */
typedef struct odt_attr {
  const char *key, *val;
  size_t key_len, val_len;
} odt_attr;

/* Reads the attribute at *p and moves *p past it and its ';'. Returns 0 at the end of the string. */
static int next_attr(const char **p, odt_attr *a) {
  const char *s = *p;
  while (*s == ';' || *s == ' ') s++;
  if (*s == '\0') return 0;
  a->key = s;
  while (*s && *s != '=' && *s != ';') s++;
  a->key_len = (size_t)(s - a->key);
  while (a->key_len > 0 && a->key[a->key_len - 1] == ' ') a->key_len--;
  if (*s == '=') s++;
  a->val = s;
  if (*s == '{') { /* a braced value may hold ';' and '='; "}}" stands for '}' */
    s++;
    while (*s && !(*s == '}' && s[1] != '}')) s += *s == '}' ? 2 : 1;
    if (*s == '}') s++;
  }
  while (*s && *s != ';') s++;
  a->val_len = (size_t)(s - a->val);
  *p = s;
  return 1;
}

static int key_is(const odt_attr *a, const char *key) {
  return a->key_len == strlen(key) && strncasecmp(a->key, key, a->key_len) == 0;
}

static int contains_ci(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  for (size_t i = 0; i + w <= n; i++)
    if (strncasecmp(s + i, word, w) == 0) return 1;
  return 0;
}

static int is_secret(const odt_attr *a) {
  return key_is(a, "PWD") || contains_ci(a->key, a->key_len, "PASS") || contains_ci(a->key, a->key_len, "SECRET") ||
         contains_ci(a->key, a->key_len, "TOKEN");
}

/* The value without braces (and with "}}" read as "}") into out; 0 when it does not fit. */
static int unbrace(const odt_attr *a, char *out, size_t n) {
  const char *v = a->val;
  size_t len = a->val_len, o = 0;
  int braced = len >= 2 && v[0] == '{' && v[len - 1] == '}';
  if (braced) v++, len -= 2;
  for (size_t i = 0; i < len; i++) {
    if (o + 1 >= n) return 0;
    out[o++] = v[i];
    if (braced && v[i] == '}' && i + 1 < len && v[i + 1] == '}') i++;
  }
  if (n == 0) return 0;
  out[o] = '\0';
  return 1;
}

int odt_get(const char *cs, const char *key, char *out, size_t n) {
  odt_attr a;
  const char *p = cs;
  while (next_attr(&p, &a))
    if (key_is(&a, key)) return unbrace(&a, out, n);
  return 0;
}

static void put(char *out, size_t n, size_t *o, const char *s, size_t len) {
  for (size_t i = 0; i < len && *o + 1 < n; i++) out[(*o)++] = s[i];
}

void odt_redact(const char *cs, char *out, size_t n) {
  odt_attr a;
  const char *p = cs;
  size_t o = 0;
  if (n == 0) return;
  for (int first = 1; next_attr(&p, &a); first = 0) {
    if (!first) put(out, n, &o, ";", 1);
    put(out, n, &o, a.key, a.key_len);
    put(out, n, &o, "=", 1);
    if (is_secret(&a)) put(out, n, &o, "***", 3);
    else put(out, n, &o, a.val, a.val_len);
  }
  out[o] = '\0';
  if (o + 1 >= n && n > 4) memcpy(out + n - 4, "...", 4);
}

/* Replaces each occurrence of secret (len bytes) in msg by ***. */
static void scrub_one(char *msg, const char *secret, size_t len) {
  char *hit;
  while ((hit = strstr(msg, secret)) != NULL) {
    memcpy(hit, "***", 3);
    memmove(hit + 3, hit + len, strlen(hit + len) + 1);
  }
}

void odt_scrub(const char *cs, char *msg) {
  odt_attr a;
  const char *p = cs;
  char value[512];
  while (next_attr(&p, &a)) {
    if (!is_secret(&a) || !unbrace(&a, value, sizeof value)) continue;
    size_t len = strlen(value);
    if (len >= 3) scrub_one(msg, value, len);
  }
}

size_t odt_utf16_to_utf8(const uint16_t *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = in[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && in[i + 1] >= 0xDC00 && in[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (in[i + 1] - 0xDC00u);
      i++;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    if (c < 0x80) {
      out[o++] = (char)c;
    } else if (c < 0x800) {
      out[o++] = (char)(0xC0 | (c >> 6));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out[o++] = (char)(0xE0 | (c >> 12));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else { /* a surrogate pair: 2 units in, 4 bytes out, within 3 bytes per unit */
      out[o++] = (char)(0xF0 | (c >> 18));
      out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    }
  }
  return o;
}
