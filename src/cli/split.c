/* SPDX-License-Identifier: Apache-2.0
 *
 * Finding where a statement ends is a lexer's job: a ';' inside 'it;s', "a;b", $$..;..$$ or a comment does not
 * end anything. The dialect is DuckDB's (PostgreSQL's lexer): '' doubling, E'' backslash escapes, nested block
 * comments, dollar quotes whose tag does not start with a digit ($1 is a parameter).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static bool is_ident_char(unsigned char c) {
  return c == '_' || c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Skips a quoted run that starts at sql[i] == q; returns the offset after its closing quote or len. */
static size_t skip_quoted(const char *sql, size_t len, size_t i, char q, bool backslash) {
  size_t j = i + 1;
  while (j < len) {
    if (backslash && sql[j] == '\\') {
      j += 2;
    } else if (sql[j] == q) {
      if (j + 1 < len && sql[j + 1] == q) {
        j += 2; /* doubled quote stands for itself */
      } else {
        return j + 1;
      }
    } else {
      j++;
    }
  }
  return len;
}

/* Length of the dollar-quote opener at sql[i] ("$$" or "$tag$"), 0 if sql[i] does not open one. */
static size_t dollar_tag_len(const char *sql, size_t len, size_t i) {
  if (i > 0 && is_ident_char((unsigned char)sql[i - 1])) return 0; /* a$b is an identifier */
  size_t j = i + 1;
  if (j < len && sql[j] >= '0' && sql[j] <= '9') return 0; /* $1 is a parameter */
  while (j < len && is_ident_char((unsigned char)sql[j])) j++;
  return j < len && sql[j] == '$' ? j + 1 - i : 0;
}

static size_t skip_dollar(const char *sql, size_t len, size_t i, size_t tag_len) {
  for (size_t j = i + tag_len; j + tag_len <= len; j++) {
    if (memcmp(sql + j, sql + i, tag_len) == 0) return j + tag_len;
  }
  return len;
}

/* Skips a block comment at sql[i] == '/' && sql[i+1] == '*'; *open is set when it never closes. */
static size_t skip_block_comment(const char *sql, size_t len, size_t i, bool *open) {
  int depth = 0;
  size_t j = i;
  while (j + 1 < len) {
    if (sql[j] == '/' && sql[j + 1] == '*') {
      depth++;
      j += 2;
    } else if (sql[j] == '*' && sql[j + 1] == '/') {
      j += 2;
      if (--depth == 0) return j;
    } else {
      j++;
    }
  }
  *open = true;
  return len;
}

/* If sql[i] starts a quoted run or a comment, returns the offset after it (setting *comment for comments);
 * otherwise returns i. */
static size_t skip_special(const char *sql, size_t len, size_t i, bool *comment, bool *open) {
  char c = sql[i];
  char next = i + 1 < len ? sql[i + 1] : '\0';
  *comment = false;
  if (c == '\'') {
    bool e = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E') &&
             (i == 1 || !is_ident_char((unsigned char)sql[i - 2]));
    return skip_quoted(sql, len, i, '\'', e);
  }
  if (c == '"') return skip_quoted(sql, len, i, '"', false);
  if (c == '-' && next == '-') {
    *comment = true;
    const char *nl = memchr(sql + i, '\n', len - i);
    return nl ? (size_t)(nl - sql) + 1 : len;
  }
  if (c == '/' && next == '*') {
    *comment = true;
    return skip_block_comment(sql, len, i, open);
  }
  if (c == '$') {
    size_t tag = dollar_tag_len(sql, len, i);
    if (tag > 0) return skip_dollar(sql, len, i, tag);
  }
  return i;
}

size_t sp_cli_stmt_end(const char *sql, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (sql[i] == ';') return i + 1;
    bool comment, open = false;
    size_t next = skip_special(sql, len, i, &comment, &open);
    i = next > i ? next : i + 1;
  }
  return 0;
}

bool sp_cli_stmt_blank(const char *sql, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (is_space(sql[i])) {
      i++;
      continue;
    }
    bool comment, open = false;
    size_t next = skip_special(sql, len, i, &comment, &open);
    if (!comment || open) return false;
    i = next;
  }
  return true;
}

size_t sp_cli_stmt_skip_blank(const char *sql, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (is_space(sql[i])) {
      i++;
      continue;
    }
    bool comment, open = false;
    size_t next = skip_special(sql, len, i, &comment, &open);
    if (!comment || open) return i;
    i = next;
  }
  return len;
}

char *sp_cli_stmt_trim(const char *sql, size_t len) {
  size_t b = 0, e = len;
  while (b < e && is_space(sql[b])) b++;
  while (e > b && is_space(sql[e - 1])) e--;
  char *s = malloc(e - b + 1);
  if (s == NULL) return NULL;
  memcpy(s, sql + b, e - b);
  s[e - b] = '\0';
  return s;
}

static int stmts_push(sp_cli_stmts *out, size_t *cap, const char *sql, size_t len, sp_error *err) {
  if (sp_cli_stmt_blank(sql, len)) return SP_OK;
  if (out->count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    char **items = realloc(out->items, ncap * sizeof *items);
    if (items == NULL) return sp_fail(err, SP_ENOMEM, "out of memory splitting statements");
    out->items = items;
    *cap = ncap;
  }
  char *s = sp_cli_stmt_trim(sql, len);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory splitting statements");
  out->items[out->count++] = s;
  return SP_OK;
}

int sp_cli_split(const char *sql, size_t len, sp_cli_stmts *out, sp_error *err) {
  sp_cli_stmts s = {0};
  size_t cap = 0, pos = 0;
  while (pos < len) {
    size_t end = sp_cli_stmt_end(sql + pos, len - pos);
    size_t n = end ? end : len - pos;
    int rc = stmts_push(&s, &cap, sql + pos, end ? n - 1 : n, err); /* without its ';' */
    if (rc != SP_OK) {
      sp_cli_stmts_free(&s);
      return rc;
    }
    pos += n;
  }
  *out = s;
  return SP_OK;
}

void sp_cli_stmts_free(sp_cli_stmts *s) {
  for (size_t i = 0; i < s->count; i++) free(s->items[i]);
  free(s->items);
  s->items = NULL;
  s->count = 0;
}
