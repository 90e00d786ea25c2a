/* SPDX-License-Identifier: Apache-2.0
 *
 * A strict reader of the XML that S3 answers to ListObjectsV2 (and of its <Error> documents). It knows
 * elements, attributes (skipped), text with the five named entities and numeric references, CDATA, comments
 * and the XML declaration; anything malformed is an error, never a guess. Limits: 16 levels of nesting,
 * 8 KiB of text per element (S3 keys are at most 1 KiB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/s3_list.h"
#include "spice/buf.h"

enum { MAX_DEPTH = 16, MAX_NAME = 64, MAX_TEXT = 8192 };

typedef struct parser {
  const char *p, *end;
  char stack[MAX_DEPTH][MAX_NAME];
  int depth;
  sp_buf text;      /* text of the innermost open element */
  char *key;        /* the <Key> of the <Contents> being read */
  char *etag;       /* its <ETag> */
  int64_t size;
  bool in_contents; /* set on <Contents> directly under the root */
  sp_s3_listing *out;
  sp_error *err;
} parser;

static int bad(parser *ps, const char *what) {
  return sp_fail(ps->err, SP_EIO, "malformed S3 listing: %s", what);
}

static bool starts(const parser *ps, const char *s) {
  size_t n = strlen(s);
  return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

/* Moves past the next `s`; false when there is none. */
static bool skip_past(parser *ps, const char *s) {
  size_t n = strlen(s);
  for (const char *q = ps->p; (size_t)(ps->end - q) >= n; q++)
    if (memcmp(q, s, n) == 0) {
      ps->p = q + n;
      return true;
    }
  return false;
}

static int append_utf8(sp_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (char)cp, n = 1;
  else if (cp < 0x800) u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 63)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 63)), u[2] = (char)(0x80 | (cp & 63)), n = 3;
  else
    u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 63)), u[2] = (char)(0x80 | ((cp >> 6) & 63)),
    u[3] = (char)(0x80 | (cp & 63)), n = 4;
  return sp_buf_append(b, u, n);
}

/* One entity reference at ps->p ('&'), decoded into the text. */
static int entity(parser *ps) {
  static const struct { const char *name; char ch; } named[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
    if (starts(ps, named[i].name)) {
      ps->p += strlen(named[i].name);
      return sp_buf_append(&ps->text, &named[i].ch, 1) == SP_OK ? SP_OK : bad(ps, "out of memory");
    }
  if (!starts(ps, "&#")) return bad(ps, "unknown entity");
  ps->p += 2;
  int hex = ps->p < ps->end && *ps->p == 'x';
  ps->p += hex;
  unsigned long cp = 0;
  int digits = 0;
  for (; ps->p < ps->end && *ps->p != ';'; ps->p++, digits++) {
    char ch = *ps->p;
    int v = ch >= '0' && ch <= '9' ? ch - '0' : hex && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                               : hex && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    if (v < 0 || digits >= 8) return bad(ps, "bad character reference");
    cp = cp * (hex ? 16u : 10u) + (unsigned long)v;
  }
  if (ps->p >= ps->end || digits == 0 || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return bad(ps, "bad character reference");
  ps->p++;
  return append_utf8(&ps->text, cp) == SP_OK ? SP_OK : bad(ps, "out of memory");
}

static int text(parser *ps) {
  while (ps->p < ps->end && *ps->p != '<') {
    if (*ps->p == '&') {
      SP_TRY(entity(ps));
    } else {
      const char *q = ps->p;
      while (q < ps->end && *q != '<' && *q != '&' && *q != '\0') q++;
      if (q < ps->end && *q == '\0') return bad(ps, "NUL byte in text");
      if (sp_buf_append(&ps->text, ps->p, (size_t)(q - ps->p)) != SP_OK) return bad(ps, "out of memory");
      ps->p = q;
    }
    if (ps->text.len > MAX_TEXT) return bad(ps, "text too long");
  }
  return SP_OK;
}

static int cdata(parser *ps) {
  ps->p += 9; /* <![CDATA[ */
  const char *start = ps->p;
  if (!skip_past(ps, "]]>")) return bad(ps, "unterminated CDATA");
  size_t n = (size_t)(ps->p - 3 - start);
  if (memchr(start, '\0', n)) return bad(ps, "NUL byte in text");
  if (ps->text.len + n > MAX_TEXT) return bad(ps, "text too long");
  return sp_buf_append(&ps->text, start, n) == SP_OK ? SP_OK : bad(ps, "out of memory");
}

static bool is_name_char(char ch) {
  return ch != '\0' && ch != '>' && ch != '/' && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' && ch != '=' &&
         ch != '<' && ch != '"' && ch != '\'';
}

/* Reads an element name at ps->p into out (a longer name is kept cut: it can only be one we ignore). */
static int read_name(parser *ps, char out[MAX_NAME]) {
  size_t n = 0;
  for (; ps->p < ps->end && is_name_char(*ps->p); ps->p++)
    if (n + 1 < MAX_NAME) out[n++] = *ps->p;
  out[n] = '\0';
  return n == 0 ? bad(ps, "empty element name") : SP_OK;
}

/* Skips attributes up to '>' or '/>'; *self_closing tells which. */
static int skip_attributes(parser *ps, bool *self_closing) {
  char quote = 0;
  for (; ps->p < ps->end; ps->p++) {
    char ch = *ps->p;
    if (quote) {
      if (ch == quote) quote = 0;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
    } else if (ch == '<') {
      return bad(ps, "'<' inside a tag");
    } else if (ch == '>') {
      *self_closing = ps->p[-1] == '/';
      ps->p++;
      return SP_OK;
    }
  }
  return bad(ps, "unterminated tag");
}

static char *text_dup(parser *ps) {
  const char *s = sp_buf_cstr(&ps->text);
  return strdup(s ? s : "");
}

static int set_str(parser *ps, char **slot) {
  free(*slot);
  *slot = text_dup(ps);
  return *slot ? SP_OK : bad(ps, "out of memory");
}

static int add_object(parser *ps) {
  sp_s3_listing *l = ps->out;
  if (ps->key == NULL) return SP_OK; /* a <Contents> without a key names nothing */
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    sp_s3_object *o = realloc(l->objects, cap * sizeof *o);
    if (o == NULL) return bad(ps, "out of memory");
    l->objects = o;
    l->cap = cap;
  }
  l->objects[l->n++] = (sp_s3_object){.key = ps->key, .size = ps->size, .etag = ps->etag};
  ps->key = NULL;
  ps->etag = NULL;
  return SP_OK;
}

static int parse_size(parser *ps) {
  const char *s = sp_buf_cstr(&ps->text);
  char *end;
  if (s == NULL || *s == '\0') return bad(ps, "empty Size");
  long long v = strtoll(s, &end, 10);
  if (*end != '\0' || v < 0) return bad(ps, "Size is not a count of bytes");
  ps->size = v;
  return SP_OK;
}

/* The end of element `name` at `depth` (1 = the root): stores what the listing needs. */
static int element_end(parser *ps, const char *name, int depth) {
  const char *root = ps->stack[0];
  if (depth == 2 && strcmp(root, "ListBucketResult") == 0) {
    if (strcmp(name, "IsTruncated") == 0) {
      const char *t = sp_buf_cstr(&ps->text);
      ps->out->truncated = t && strcmp(t, "true") == 0;
    }
    if (strcmp(name, "NextContinuationToken") == 0) return set_str(ps, &ps->out->next_token);
    if (strcmp(name, "Contents") == 0) {
      ps->in_contents = false;
      return add_object(ps);
    }
  }
  if (depth == 2 && strcmp(root, "Error") == 0) {
    if (strcmp(name, "Code") == 0) return set_str(ps, &ps->out->error_code);
    if (strcmp(name, "Message") == 0) return set_str(ps, &ps->out->error_message);
  }
  if (depth == 3 && ps->in_contents) {
    if (strcmp(name, "Key") == 0) {
      if (ps->key) return bad(ps, "two Keys in one Contents");
      ps->key = text_dup(ps);
      return ps->key ? SP_OK : bad(ps, "out of memory");
    }
    if (strcmp(name, "Size") == 0) return parse_size(ps);
    if (strcmp(name, "ETag") == 0) return set_str(ps, &ps->etag);
  }
  return SP_OK;
}

static int start_tag(parser *ps) {
  char name[MAX_NAME];
  bool self_closing = false;
  ps->p++;
  SP_TRY(read_name(ps, name));
  SP_TRY(skip_attributes(ps, &self_closing));
  if (ps->depth == 0 && strcmp(name, "ListBucketResult") != 0 && strcmp(name, "Error") != 0)
    return bad(ps, "the document is neither a ListBucketResult nor an Error");
  if (ps->depth == MAX_DEPTH) return bad(ps, "nested too deep");
  if (ps->depth == 1 && strcmp(name, "Contents") == 0 && strcmp(ps->stack[0], "ListBucketResult") == 0) {
    ps->in_contents = true;
    free(ps->key);
    free(ps->etag);
    ps->key = ps->etag = NULL;
    ps->size = -1;
  }
  memcpy(ps->stack[ps->depth++], name, MAX_NAME);
  ps->text.len = 0;
  if (!self_closing) return SP_OK;
  ps->depth--;
  return element_end(ps, name, ps->depth + 1);
}

static int end_tag(parser *ps) {
  char name[MAX_NAME];
  ps->p += 2;
  SP_TRY(read_name(ps, name));
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
  if (ps->p >= ps->end || *ps->p != '>') return bad(ps, "unterminated end tag");
  ps->p++;
  if (ps->depth == 0 || strcmp(ps->stack[ps->depth - 1], name) != 0) return bad(ps, "mismatched end tag");
  int rc = element_end(ps, name, ps->depth);
  ps->depth--;
  ps->text.len = 0;
  return rc;
}

static int markup(parser *ps, bool *done_root) {
  if (starts(ps, "<?")) return skip_past(ps, "?>") ? SP_OK : bad(ps, "unterminated declaration");
  if (starts(ps, "<!--")) return skip_past(ps, "-->") ? SP_OK : bad(ps, "unterminated comment");
  if (starts(ps, "<![CDATA[")) return ps->depth ? cdata(ps) : bad(ps, "CDATA outside the root");
  if (starts(ps, "<!")) return skip_past(ps, ">") ? SP_OK : bad(ps, "unterminated declaration");
  if (*done_root) return bad(ps, "content after the root element");
  int rc = starts(ps, "</") ? end_tag(ps) : start_tag(ps);
  if (rc == SP_OK && ps->depth == 0) *done_root = true;
  return rc;
}

static int parse(parser *ps) {
  bool done_root = false;
  while (ps->p < ps->end) {
    if (*ps->p == '<') {
      SP_TRY(markup(ps, &done_root));
    } else if (ps->depth > 0) {
      SP_TRY(text(ps));
    } else {
      char ch = *ps->p++;
      if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') return bad(ps, "text outside the root element");
    }
  }
  if (!done_root) return bad(ps, ps->depth ? "the document ends inside an element" : "no root element");
  return SP_OK;
}

int sp__s3_list_parse(const char *xml, size_t len, sp_s3_listing *out, sp_error *err) {
  parser *ps = calloc(1, sizeof *ps);
  if (ps == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  ps->p = xml;
  ps->end = xml + len;
  ps->out = out;
  ps->err = err;
  ps->size = -1;
  if (len >= 3 && memcmp(xml, "\xEF\xBB\xBF", 3) == 0) ps->p += 3; /* a UTF-8 byte order mark */
  out->truncated = false;
  free(out->next_token);
  out->next_token = NULL;
  int rc = parse(ps);
  free(ps->key);
  free(ps->etag);
  sp_buf_free(&ps->text);
  free(ps);
  return rc;
}

void sp__s3_listing_free(sp_s3_listing *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->objects[i].key);
    free(l->objects[i].etag);
  }
  free(l->objects);
  free(l->next_token);
  free(l->error_code);
  free(l->error_message);
  memset(l, 0, sizeof *l);
}
