/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal: the postgres connector's connection set-up and filter translation, shared with the postgres
 * accelerator (src/accelerators/postgres.c), which keeps its copy in PostgreSQL tables.
 */
#ifndef SPICE_PG_CONN_H
#define SPICE_PG_CONN_H

#include <libpq-fe.h>

#include "spice/connector.h"
#include "spice/error.h"

/* The connection params (pg_connection_string, pg_host, pg_port, pg_db, pg_user, pg_pass, pg_sslmode,
 * pg_sslrootcert) as sp_param_spec entries, for the param tables of the connector and of the accelerator. */
#define SP_PG_CONNECTION_PARAMS                                                                                    \
  {"connection_string", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL,                          \
   "libpq connection string or URI; takes the place of the other pg_ params"},                                    \
      {"host", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "server host name or socket folder"},               \
      {"port", SP_PARAM_INT, SP_PARAM_PREFIXED, "5432", NULL, "server port"},                                      \
      {"db", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "database name"},                                     \
      {"user", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "user name"},                     \
      {"pass", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "password"},                      \
      {"sslmode", SP_PARAM_ENUM, SP_PARAM_PREFIXED, NULL, "disable|allow|prefer|require|verify-ca|verify-full",   \
       "TLS mode (default: libpq's, prefer)"},                                                                     \
      {"sslrootcert", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "CA certificate file for verify-ca/verify-full"},

/* libpq keywords and values (borrowed from p) for the pg_* params, written into kw/val (at most cap; not
 * terminated: a caller may add its own before the NULL). Returns how many; *expand is 1 when
 * pg_connection_string is used (kw[0] is "dbname" holding it), as PQconnectdbParams' expand_dbname wants. */
size_t sp_pg_conninfo(const sp_params *p, const char **kw, const char **val, size_t cap, int *expand);

/* A new connection made from proto->params (pg_host, pg_port, pg_db, pg_user, pg_pass, pg_sslmode,
 * pg_sslrootcert, pg_connection_string) as the connector makes its own; proto->dataset names it in messages.
 * proto is borrowed for the call; *out is owned by the caller (PQfinish). SP_ECONNECT when the server cannot be
 * reached, SP_EUNAUTH when it refuses the credentials. */
int sp_pg_connect(const sp_connector *proto, PGconn **out, sp_error *err);

/* Translates `SELECT * FROM <dataset> WHERE …` (DuckDB SQL, e.g. a retention condition) into a PostgreSQL
 * condition over the columns of the open connector c (borrowed). *where is malloc'd, owned by the caller, ""
 * when there is no WHERE clause. SP_ENOTSUP when any part does not translate. */
int sp_pg_where(sp_connector *c, const char *query, char **where, sp_error *err);

#endif
