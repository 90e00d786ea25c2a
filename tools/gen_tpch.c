/* SPDX-License-Identifier: Apache-2.0
 *
 * gen_tpch: a deterministic TPC-H-shaped data set — the 8 tables with the specification's columns, types, key
 * relationships and value domains (the ones the 22 queries select on) — written as Parquet.
 *
 *   gen_tpch [--sf SCALE] [--force] OUTDIR        (default scale 0.1; SF 1 = 6 M lineitem rows)
 *
 * Not dbgen: values come from DuckDB's hash() of the row keys (same bytes every run), and the text columns
 * are shorter. Relationships follow the specification: 4 suppliers per part (partsupp), lineitem suppliers
 * taken from their part's partsupp rows, customers with a key divisible by 3 have no orders, order status and
 * total price derived from their lines. A stamp file makes a second run with the same scale a no-op.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <duckdb.h>

#define GEN_VERSION 1

static int run(duckdb_connection c, const char *sql) {
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    fprintf(stderr, "gen_tpch: %s\n  in: %.300s\n", duckdb_result_error(&r), sql);
    duckdb_destroy_result(&r);
    return -1;
  }
  duckdb_destroy_result(&r);
  return 0;
}

/* The generation, in DuckDB SQL; {S} {P} {C} {O} are the table sizes. */
static const char *const STEPS[] = {
    "CREATE MACRO r(k, salt, n) AS (hash(k, salt) % (n))::BIGINT",
    "CREATE TABLE region AS SELECT * FROM (VALUES (0, 'AFRICA'), (1, 'AMERICA'), (2, 'ASIA'), (3, 'EUROPE'), "
    "(4, 'MIDDLE EAST')) t(r_regionkey, r_name), (SELECT 'regular requests sleep' AS r_comment)",
    "CREATE TABLE nation AS SELECT n_nationkey::INTEGER AS n_nationkey, n_name, n_regionkey::INTEGER AS n_regionkey, "
    "'furiously express accounts' AS n_comment FROM (VALUES (0, 'ALGERIA', 0), (1, 'ARGENTINA', 1), (2, 'BRAZIL', 1), "
    "(3, 'CANADA', 1), (4, 'EGYPT', 4), (5, 'ETHIOPIA', 0), (6, 'FRANCE', 3), (7, 'GERMANY', 3), (8, 'INDIA', 2), "
    "(9, 'INDONESIA', 2), (10, 'IRAN', 4), (11, 'IRAQ', 4), (12, 'JAPAN', 2), (13, 'JORDAN', 4), (14, 'KENYA', 0), "
    "(15, 'MOROCCO', 0), (16, 'MOZAMBIQUE', 0), (17, 'PERU', 1), (18, 'CHINA', 2), (19, 'ROMANIA', 3), "
    "(20, 'SAUDI ARABIA', 4), (21, 'VIETNAM', 2), (22, 'RUSSIA', 3), (23, 'UNITED KINGDOM', 3), "
    "(24, 'UNITED STATES', 1)) t(n_nationkey, n_name, n_regionkey)",
    "CREATE TABLE supplier AS SELECT i::INTEGER AS s_suppkey, 'Supplier#' || lpad(i::VARCHAR, 9, '0') AS s_name, "
    "'street ' || r(i, 'sa', 100000) AS s_address, r(i, 'sn', 25)::INTEGER AS s_nationkey, "
    "(r(i, 'sn', 25) + 10) || '-' || (100 + r(i, 'p1', 900)) || '-' || (100 + r(i, 'p2', 900)) || '-' || "
    "(1000 + r(i, 'p3', 9000)) AS s_phone, ((r(i, 'sb', 1099999) - 99999) / 100)::DECIMAL(15,2) AS s_acctbal, "
    "CASE WHEN r(i, 'sc', 200) = 0 THEN 'slyly Customer dependencies Complaints sleep' "
    "ELSE 'carefully regular deposits ' || r(i, 'sx', 1000) END AS s_comment FROM range(1, {S} + 1) t(i)",
    "CREATE TABLE part AS WITH w AS (SELECT ['almond','antique','aquamarine','azure','beige','bisque','black',"
    "'blanched','blue','blush','brown','burlywood','burnished','chartreuse','chiffon','chocolate','coral',"
    "'cornflower','cornsilk','cream','cyan','dark','deep','dim','dodger','drab','firebrick','floral','forest',"
    "'frosted','gainsboro','ghost','goldenrod','green','grey','honeydew','hot','indian','ivory','khaki','lace',"
    "'lavender','lawn','lemon','light','lime','linen','magenta','maroon','medium','metallic','midnight','mint',"
    "'misty','moccasin','navajo','navy','olive','orange','orchid','pale','papaya','peach','peru','pink','plum',"
    "'powder','puff','purple','red','rose','rosy','royal','saddle','salmon','sandy','seashell','sienna','sky',"
    "'slate','smoke','snow','spring','steel','tan','thistle','tomato','turquoise','violet','wheat','white',"
    "'yellow'] AS c) SELECT i::INTEGER AS p_partkey, c[1 + r(i, 'n1', len(c))] || ' ' || c[1 + r(i, 'n2', len(c))] "
    "|| ' ' || c[1 + r(i, 'n3', len(c))] || ' ' || c[1 + r(i, 'n4', len(c))] || ' ' || c[1 + r(i, 'n5', len(c))] "
    "AS p_name, 'Manufacturer#' || (1 + r(i, 'm', 5)) AS p_mfgr, 'Brand#' || (1 + r(i, 'm', 5)) || (1 + r(i, 'b', 5)) "
    "AS p_brand, ['STANDARD','SMALL','MEDIUM','LARGE','ECONOMY','PROMO'][1 + r(i, 't1', 6)] || ' ' || "
    "['ANODIZED','BURNISHED','PLATED','POLISHED','BRUSHED'][1 + r(i, 't2', 5)] || ' ' || "
    "['TIN','NICKEL','BRASS','STEEL','COPPER'][1 + r(i, 't3', 5)] AS p_type, (1 + r(i, 'sz', 50))::INTEGER AS p_size, "
    "['SM','LG','MED','JUMBO','WRAP'][1 + r(i, 'c1', 5)] || ' ' || "
    "['CASE','BOX','BAG','JAR','PKG','PACK','CAN','DRUM'][1 + r(i, 'c2', 8)] AS p_container, "
    "((90000 + ((i // 10) % 20001) + 100 * (i % 1000)) / 100)::DECIMAL(15,2) AS p_retailprice, "
    "'final ideas haggle' AS p_comment FROM range(1, {P} + 1) t(i), w",
    "CREATE TABLE partsupp AS SELECT p::INTEGER AS ps_partkey, "
    "(((p + j * ({S} // 4 + (p - 1) // {S})) % {S}) + 1)::INTEGER AS ps_suppkey, "
    "(1 + r(p * 4 + j, 'q', 9999))::INTEGER AS ps_availqty, ((100 + r(p * 4 + j, 'c', 99901)) / 100)::DECIMAL(15,2) "
    "AS ps_supplycost, 'blithely even packages' AS ps_comment FROM range(1, {P} + 1) a(p), range(0, 4) b(j)",
    "CREATE TABLE customer AS SELECT i::INTEGER AS c_custkey, 'Customer#' || lpad(i::VARCHAR, 9, '0') AS c_name, "
    "'avenue ' || r(i, 'ca', 100000) AS c_address, r(i, 'cn', 25)::INTEGER AS c_nationkey, "
    "(r(i, 'cn', 25) + 10) || '-' || (100 + r(i, 'q1', 900)) || '-' || (100 + r(i, 'q2', 900)) || '-' || "
    "(1000 + r(i, 'q3', 9000)) AS c_phone, ((r(i, 'cb', 1099999) - 99999) / 100)::DECIMAL(15,2) AS c_acctbal, "
    "['AUTOMOBILE','BUILDING','FURNITURE','MACHINERY','HOUSEHOLD'][1 + r(i, 'cs', 5)] AS c_mktsegment, "
    "'quickly final theodolites' AS c_comment FROM range(1, {C} + 1) t(i)",
    /* Orders of customers whose key is not a multiple of 3. */
    "CREATE TABLE orders_base AS SELECT i::BIGINT AS o_orderkey, (r(i, 'oc', {C} // 3) * 3 + 1 + r(i, 'od', 2))::INTEGER "
    "AS o_custkey, (DATE '1992-01-01' + r(i, 'dt', 2405)::INTEGER) AS o_orderdate, "
    "['1-URGENT','2-HIGH','3-MEDIUM','4-NOT SPECIFIED','5-LOW'][1 + r(i, 'op', 5)] AS o_orderpriority, "
    "'Clerk#' || lpad((1 + r(i, 'ck', greatest(1, {S} // 10)))::VARCHAR, 9, '0') AS o_clerk, 0::INTEGER AS "
    "o_shippriority, CASE WHEN r(i, 'cm', 100) = 0 THEN 'pending special foxes requests' ELSE 'fluffily express "
    "dependencies' END AS o_comment FROM range(1, {O} + 1) t(i)",
    "CREATE TABLE lineitem AS WITH l AS (SELECT o_orderkey, o_orderdate, n, o_orderkey * 8 + n AS k, "
    "1 + r(o_orderkey * 8 + n, 'lp', {P}) AS p FROM orders_base, range(1, 8) t(n) "
    "WHERE n <= 1 + r(o_orderkey, 'nl', 7)), m AS (SELECT *, o_orderdate + (1 + r(k, 'sd', 121))::INTEGER AS ship "
    "FROM l) SELECT o_orderkey AS l_orderkey, p::INTEGER AS l_partkey, "
    "(((p + r(k, 'ls', 4) * ({S} // 4 + (p - 1) // {S})) % {S}) + 1)::INTEGER AS l_suppkey, n::INTEGER AS "
    "l_linenumber, (1 + r(k, 'lq', 50))::DECIMAL(15,2) AS l_quantity, ((1 + r(k, 'lq', 50)) * "
    "((90000 + ((p // 10) % 20001) + 100 * (p % 1000)) / 100))::DECIMAL(15,2) AS l_extendedprice, "
    "(r(k, 'ld', 11) / 100)::DECIMAL(15,2) AS l_discount, (r(k, 'lt', 9) / 100)::DECIMAL(15,2) AS l_tax, "
    "CASE WHEN ship + (1 + r(k, 'rd', 30))::INTEGER <= DATE '1995-06-17' THEN (CASE WHEN r(k, 'rf', 2) = 0 "
    "THEN 'R' ELSE 'A' END) ELSE 'N' END AS l_returnflag, CASE WHEN ship > DATE '1995-06-17' THEN 'O' ELSE 'F' END "
    "AS l_linestatus, ship AS l_shipdate, o_orderdate + (30 + r(k, 'cd', 61))::INTEGER AS l_commitdate, "
    "ship + (1 + r(k, 'rd', 30))::INTEGER AS l_receiptdate, "
    "['DELIVER IN PERSON','COLLECT COD','NONE','TAKE BACK RETURN'][1 + r(k, 'si', 4)] AS l_shipinstruct, "
    "['REG AIR','AIR','RAIL','SHIP','TRUCK','MAIL','FOB'][1 + r(k, 'sm', 7)] AS l_shipmode, "
    "'carefully bold instructions' AS l_comment FROM m",
    "CREATE TABLE orders AS SELECT o.o_orderkey, o.o_custkey, CASE WHEN a.open = 0 THEN 'F' WHEN a.open = a.n THEN "
    "'O' ELSE 'P' END AS o_orderstatus, a.total::DECIMAL(15,2) AS o_totalprice, o.o_orderdate, o.o_orderpriority, "
    "o.o_clerk, o.o_shippriority, o.o_comment FROM orders_base o JOIN (SELECT l_orderkey, count(*) AS n, "
    "count(*) FILTER (WHERE l_linestatus = 'O') AS open, sum(l_extendedprice * (1 + l_tax) * (1 - l_discount)) AS "
    "total FROM lineitem GROUP BY l_orderkey) a ON a.l_orderkey = o.o_orderkey",
};

static const char *const TABLES[] = {"region", "nation", "supplier", "part", "partsupp", "customer", "orders", "lineitem"};

/* Replaces {S} {P} {C} {O} with the sizes. */
static char *expand(const char *tmpl, const long long sizes[4]) {
  size_t cap = strlen(tmpl) * 2 + 64, o = 0;
  char *out = malloc(cap);
  for (const char *p = tmpl; out && *p; p++) {
    const char *keys = "SPCO", *k;
    if (p[0] == '{' && p[1] && (k = strchr(keys, p[1])) != NULL && p[2] == '}') {
      o += (size_t)snprintf(out + o, cap - o, "%lld", sizes[k - keys]);
      p += 2;
    } else {
      out[o++] = *p;
    }
  }
  if (out) out[o] = '\0';
  return out;
}

int main(int argc, char **argv) {
  double sf = 0.1;
  int force = 0;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--sf") == 0 && i + 1 < argc) sf = atof(argv[++i]);
    else if (strcmp(argv[i], "--force") == 0) force = 1;
    else if (argv[i][0] != '-' && dir == NULL) dir = argv[i];
    else {
      fprintf(stderr, "usage: gen_tpch [--sf SCALE] [--force] OUTDIR\n");
      return 2;
    }
  }
  if (dir == NULL || sf <= 0 || sf > 100) {
    fprintf(stderr, "usage: gen_tpch [--sf SCALE (0 < SF <= 100)] [--force] OUTDIR\n");
    return 2;
  }
  char stamp[4096], want[128], have[128] = "";
  snprintf(stamp, sizeof stamp, "%s/.gen_tpch", dir);
  snprintf(want, sizeof want, "v%d sf=%g\n", GEN_VERSION, sf);
  FILE *f = fopen(stamp, "r");
  if (f) {
    if (fgets(have, sizeof have, f) == NULL) have[0] = '\0';
    fclose(f);
  }
  if (!force && strcmp(have, want) == 0) return 0;
  mkdir(dir, 0755);
  long long sizes[4] = {(long long)(10000 * sf), (long long)(200000 * sf), (long long)(150000 * sf),
                        (long long)(1500000 * sf)};
  for (int i = 0; i < 4; i++)
    if (sizes[i] < 4) sizes[i] = 4;
  duckdb_database db;
  duckdb_connection c;
  if (duckdb_open(NULL, &db) == DuckDBError || duckdb_connect(db, &c) == DuckDBError) {
    fprintf(stderr, "gen_tpch: could not open DuckDB\n");
    return 1;
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof STEPS / sizeof STEPS[0]; i++) {
    char *sql = expand(STEPS[i], sizes);
    rc = sql ? run(c, sql) : -1;
    free(sql);
  }
  for (size_t i = 0; rc == 0 && i < sizeof TABLES / sizeof TABLES[0]; i++) {
    char sql[8400];
    snprintf(sql, sizeof sql, "COPY %s TO '%s/%s.parquet.tmp' (FORMAT parquet)", TABLES[i], dir, TABLES[i]);
    rc = run(c, sql);
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%s.parquet.tmp", dir, TABLES[i]);
    snprintf(to, sizeof to, "%s/%s.parquet", dir, TABLES[i]);
    if (rc == 0 && rename(from, to) != 0) rc = -1;
  }
  duckdb_disconnect(&c);
  duckdb_close(&db);
  if (rc != 0) return 1;
  f = fopen(stamp, "w");
  if (f) {
    fputs(want, f);
    fclose(f);
  }
  return 0;
}
