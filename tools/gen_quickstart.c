/* SPDX-License-Identifier: Apache-2.0
 *
 * gen_quickstart: writes the quickstart (and benchmark) data set, deterministically.
 *
 *   gen_quickstart [--rows N] [--only trips] [--force] OUTDIR
 *
 * OUTDIR/trips.parquet   N NYC-taxi-like trips in January 2024 (default 300,000)
 * OUTDIR/zones.csv       the taxi zones the trips refer to (zone_id, zone, borough, service_zone)
 * OUTDIR/vendors.jsonl   the taxi technology vendors (one JSON object a line)
 *
 * Every value is a function of the row number through DuckDB's hash(), never of a random generator, so two
 * runs write the same bytes. A stamp file (OUTDIR/.gen_quickstart) records what was generated; when it
 * matches the request and the files exist, the tool returns at once (make quickstart runs it every time).
 * Files are written under temporary names and renamed, so an interrupted run leaves no half file behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <duckdb.h>

#include "spice/error.h"

/* Bump when the generated content changes, so stale data folders are regenerated. */
#define GEN_VERSION 1

typedef struct zone {
  int id;
  const char *name;
  const char *borough;
  const char *service_zone;
  int weight; /* relative share of pickups and dropoffs */
} zone;

/* A subset of the NYC TLC taxi zones (ids and names as published by the TLC), weighted roughly like yellow
 * cab traffic: Midtown and the airports busy, the outer boroughs quiet. Sorted by id. */
static const zone ZONES[] = {
    {1, "Newark Airport", "EWR", "EWR", 1},
    {4, "Alphabet City", "Manhattan", "Yellow Zone", 4},
    {7, "Astoria", "Queens", "Boro Zone", 3},
    {13, "Battery Park City", "Manhattan", "Yellow Zone", 5},
    {24, "Bloomingdale", "Manhattan", "Yellow Zone", 5},
    {25, "Boerum Hill", "Brooklyn", "Boro Zone", 2},
    {33, "Brooklyn Heights", "Brooklyn", "Boro Zone", 3},
    {41, "Central Harlem", "Manhattan", "Boro Zone", 4},
    {42, "Central Harlem North", "Manhattan", "Boro Zone", 3},
    {43, "Central Park", "Manhattan", "Yellow Zone", 12},
    {45, "Chinatown", "Manhattan", "Yellow Zone", 4},
    {48, "Clinton East", "Manhattan", "Yellow Zone", 14},
    {50, "Clinton West", "Manhattan", "Yellow Zone", 8},
    {65, "Downtown Brooklyn/MetroTech", "Brooklyn", "Boro Zone", 3},
    {66, "DUMBO/Vinegar Hill", "Brooklyn", "Boro Zone", 2},
    {68, "East Chelsea", "Manhattan", "Yellow Zone", 14},
    {69, "East Concourse/Concourse Village", "Bronx", "Boro Zone", 1},
    {74, "East Harlem North", "Manhattan", "Boro Zone", 4},
    {75, "East Harlem South", "Manhattan", "Boro Zone", 6},
    {79, "East Village", "Manhattan", "Yellow Zone", 15},
    {87, "Financial District North", "Manhattan", "Yellow Zone", 7},
    {88, "Financial District South", "Manhattan", "Yellow Zone", 4},
    {90, "Flatiron", "Manhattan", "Yellow Zone", 11},
    {97, "Fort Greene", "Brooklyn", "Boro Zone", 2},
    {100, "Garment District", "Manhattan", "Yellow Zone", 10},
    {107, "Gramercy", "Manhattan", "Yellow Zone", 13},
    {112, "Greenpoint", "Brooklyn", "Boro Zone", 2},
    {113, "Greenwich Village North", "Manhattan", "Yellow Zone", 10},
    {114, "Greenwich Village South", "Manhattan", "Yellow Zone", 9},
    {125, "Hudson Sq", "Manhattan", "Yellow Zone", 6},
    {129, "Jackson Heights", "Queens", "Boro Zone", 2},
    {132, "JFK Airport", "Queens", "Airports", 18},
    {137, "Kips Bay", "Manhattan", "Yellow Zone", 11},
    {138, "LaGuardia Airport", "Queens", "Airports", 13},
    {140, "Lenox Hill East", "Manhattan", "Yellow Zone", 12},
    {141, "Lenox Hill West", "Manhattan", "Yellow Zone", 14},
    {142, "Lincoln Square East", "Manhattan", "Yellow Zone", 15},
    {143, "Lincoln Square West", "Manhattan", "Yellow Zone", 8},
    {144, "Little Italy/NoLiTa", "Manhattan", "Yellow Zone", 6},
    {145, "Long Island City/Hunters Point", "Queens", "Boro Zone", 2},
    {146, "Long Island City/Queens Plaza", "Queens", "Boro Zone", 2},
    {148, "Lower East Side", "Manhattan", "Yellow Zone", 8},
    {151, "Manhattan Valley", "Manhattan", "Yellow Zone", 5},
    {158, "Meatpacking/West Village West", "Manhattan", "Yellow Zone", 7},
    {159, "Melrose South", "Bronx", "Boro Zone", 1},
    {161, "Midtown Center", "Manhattan", "Yellow Zone", 22},
    {162, "Midtown East", "Manhattan", "Yellow Zone", 18},
    {163, "Midtown North", "Manhattan", "Yellow Zone", 15},
    {164, "Midtown South", "Manhattan", "Yellow Zone", 14},
    {166, "Morningside Heights", "Manhattan", "Boro Zone", 5},
    {168, "Mott Haven/Port Morris", "Bronx", "Boro Zone", 1},
    {170, "Murray Hill", "Manhattan", "Yellow Zone", 14},
    {181, "Park Slope", "Brooklyn", "Boro Zone", 3},
    {186, "Penn Station/Madison Sq West", "Manhattan", "Yellow Zone", 15},
    {206, "Saint George/New Brighton", "Staten Island", "Boro Zone", 1},
    {209, "Seaport", "Manhattan", "Yellow Zone", 4},
    {211, "SoHo", "Manhattan", "Yellow Zone", 7},
    {224, "Stuy Town/Peter Cooper Village", "Manhattan", "Yellow Zone", 4},
    {229, "Sutton Place/Turtle Bay North", "Manhattan", "Yellow Zone", 11},
    {230, "Times Sq/Theatre District", "Manhattan", "Yellow Zone", 17},
    {231, "TriBeCa/Civic Center", "Manhattan", "Yellow Zone", 9},
    {233, "UN/Turtle Bay South", "Manhattan", "Yellow Zone", 9},
    {234, "Union Sq", "Manhattan", "Yellow Zone", 14},
    {236, "Upper East Side North", "Manhattan", "Yellow Zone", 20},
    {237, "Upper East Side South", "Manhattan", "Yellow Zone", 21},
    {238, "Upper West Side North", "Manhattan", "Yellow Zone", 12},
    {239, "Upper West Side South", "Manhattan", "Yellow Zone", 14},
    {246, "West Chelsea/Hudson Yards", "Manhattan", "Yellow Zone", 10},
    {247, "West Concourse", "Bronx", "Boro Zone", 1},
    {249, "West Village", "Manhattan", "Yellow Zone", 12},
    {255, "Williamsburg (North Side)", "Brooklyn", "Boro Zone", 3},
    {256, "Williamsburg (South Side)", "Brooklyn", "Boro Zone", 2},
    {260, "Woodside", "Queens", "Boro Zone", 1},
    {261, "World Trade Center", "Manhattan", "Yellow Zone", 6},
    {262, "Yorkville East", "Manhattan", "Yellow Zone", 6},
    {263, "Yorkville West", "Manhattan", "Yellow Zone", 10},
};
#define N_ZONES (sizeof ZONES / sizeof ZONES[0])

/* Relative pickups per hour of day (0..23): quiet before dawn, peaking in the evening rush. */
static const int HOUR_WEIGHTS[24] = {20, 13, 9, 6, 5, 7, 18, 32, 40, 42, 44, 46,
                                     49, 50, 53, 55, 56, 62, 64, 58, 52, 50, 45, 33};

static const char VENDORS_JSONL[] =
    "{\"vendor_id\":1,\"name\":\"Creative Mobile Technologies, LLC\",\"short_name\":\"CMT\",\"fleet_share\":0.26}\n"
    "{\"vendor_id\":2,\"name\":\"Curb Mobility, LLC\",\"short_name\":\"Curb\",\"fleet_share\":0.73}\n"
    "{\"vendor_id\":6,\"name\":\"Myle Technologies Inc\",\"short_name\":\"Myle\",\"fleet_share\":0.005}\n"
    "{\"vendor_id\":7,\"name\":\"Helix\",\"short_name\":\"Helix\",\"fleet_share\":0.005}\n";

/* ---- a growable string ------------------------------------------------------------------------------- */

typedef struct strbuf {
  char *p;
  size_t len, cap;
  bool oom;
} strbuf;

static void sb_addf(strbuf *b, const char *fmt, ...) SP_PRINTF(2, 3);

static void sb_addf(strbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = true; return; }
    if (b->p && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = true; return; }
    b->p = p;
    b->cap = cap;
  }
}

/* Appends s as a SQL string literal ('' doubles quotes). */
static void sb_add_literal(strbuf *b, const char *s) {
  sb_addf(b, "'");
  for (; *s; s++) {
    if (*s == '\'')
      sb_addf(b, "''");
    else
      sb_addf(b, "%c", *s);
  }
  sb_addf(b, "'");
}

/* ---- the trips query ------------------------------------------------------------------------------------ */

/* [w copies of 1, ..., w copies of n]: indexing it with a uniform slot picks position p with weight w[p]. */
static int add_zone_slots(strbuf *b) {
  int total = 0;
  sb_addf(b, "[");
  for (size_t i = 0; i < N_ZONES; i++)
    for (int k = 0; k < ZONES[i].weight; k++) sb_addf(b, "%s%zu", total++ ? "," : "", i + 1);
  sb_addf(b, "]");
  return total;
}

static int add_hour_slots(strbuf *b) {
  int total = 0;
  sb_addf(b, "[");
  for (int h = 0; h < 24; h++)
    for (int k = 0; k < HOUR_WEIGHTS[h]; k++) sb_addf(b, "%s%d", total++ ? "," : "", h);
  sb_addf(b, "]");
  return total;
}

typedef enum zone_attr { ZA_ID, ZA_NAME, ZA_MANHATTAN, ZA_AIRPORT } zone_attr;

static void add_zone_value(strbuf *b, const zone *z, zone_attr attr) {
  switch (attr) {
  case ZA_ID: sb_addf(b, "%d", z->id); break;
  case ZA_NAME: sb_add_literal(b, z->name); break;
  case ZA_MANHATTAN: sb_addf(b, "%s", strcmp(z->borough, "Manhattan") == 0 ? "true" : "false"); break;
  case ZA_AIRPORT:
    sb_addf(b, "%s", strcmp(z->service_zone, "Airports") == 0 || strcmp(z->service_zone, "EWR") == 0 ? "true" : "false");
    break;
  }
}

/* CREATE MACRO name(p) AS [value of zone 1, ..., value of zone n][p]: a constant lookup by zone position. */
static void add_zone_macro(strbuf *b, const char *name, zone_attr attr) {
  sb_addf(b, "CREATE MACRO %s(p) AS [", name);
  for (size_t i = 0; i < N_ZONES; i++) {
    if (i) sb_addf(b, ",");
    add_zone_value(b, &ZONES[i], attr);
  }
  sb_addf(b, "][p];\n");
}

/* Macros over constant lists: u(k) is a uniform double in [0, 1) from the row number and a salt k;
 * zone_slot/hour_slot map a hash onto a zone position / an hour with the weights above. */
static void add_macros(strbuf *b) {
  add_zone_macro(b, "zone_id", ZA_ID);
  add_zone_macro(b, "zone_name", ZA_NAME);
  add_zone_macro(b, "zone_manhattan", ZA_MANHATTAN);
  add_zone_macro(b, "zone_airport", ZA_AIRPORT);
  sb_addf(b, "CREATE MACRO u(i, k) AS (hash(i, k) %% 1000000) / 1000000.0;\n");
  sb_addf(b, "CREATE MACRO zone_slot(h) AS ");
  int zw = add_zone_slots(b);
  sb_addf(b, "[(h %% %d)::BIGINT + 1];\n", zw);
  sb_addf(b, "CREATE MACRO hour_slot(h) AS ");
  int hw = add_hour_slots(b);
  sb_addf(b, "[(h %% %d)::BIGINT + 1];\n", hw);
  /* The rest of the time hash picks the day and the second within the hour, independent of the hour. */
  sb_addf(b, "CREATE MACRO day_of(h) AS (h // %d %% 31)::BIGINT;\n", hw);
  sb_addf(b, "CREATE MACRO sec_of(h) AS (h // %d %% 3600)::BIGINT;\n", hw * 31);
}

/* Builds the macros and COPY (SELECT ... FROM range(rows)) TO path. Each CTE derives one family of columns;
 * every step is a projection, so rows keep their order and the file is the same on every run. */
static char *trips_copy_sql(int64_t rows, const char *path) {
  strbuf b = {0};
  add_macros(&b);
  sb_addf(&b,
          "COPY (WITH\n"
          "  z AS (SELECT i, hash(i, 2) AS h_time, zone_slot(hash(i, 3)) AS pu, zone_slot(hash(i, 4)) AS dz,\n"
          "    u(i, 1) AS u_vendor, u(i, 5) AS u_pass, u(i, 6) AS u_dist, u(i, 7) AS u_speed, u(i, 8) AS u_pay,\n"
          "    u(i, 9) AS u_tip, u(i, 10) AS u_toll FROM range(%" PRId64 ") t(i)),\n",
          rows);
  sb_addf(&b,
          "  d AS (SELECT z.*, zone_id(pu) AS pu_id, zone_id(dz) AS dz_id, zone_manhattan(pu) AS pu_manh,\n"
          "    zone_manhattan(dz) AS dz_manh, zone_airport(pu) OR zone_airport(dz) AS airport_trip,\n"
          "    hour_slot(h_time) AS hour,\n"
          "    TIMESTAMP '2024-01-01 00:00:00' + to_seconds(day_of(h_time) * 86400 + hour_slot(h_time) * 3600\n"
          "                                                   + sec_of(h_time)) AS pickup FROM z),\n"
          "  e AS (SELECT d.*,\n"
          "    round(CASE WHEN 132 IN (pu_id, dz_id) THEN 14 + 7 * u_dist\n"
          "               WHEN 1 IN (pu_id, dz_id) THEN 16 + 6 * u_dist\n"
          "               WHEN 138 IN (pu_id, dz_id) THEN 7 + 6 * u_dist\n"
          "               WHEN airport_trip THEN 9 + 11 * u_dist\n"
          "               WHEN pu = dz THEN 0.3 + 1.2 * u_dist\n"
          "               ELSE 0.4 - ln(1 - 0.999 * u_dist) * 2.1 END, 2) AS dist,\n"
          "    CASE WHEN hour < 6 THEN 19 WHEN hour BETWEEN 7 AND 19 THEN 9 ELSE 13 END * (0.7 + 0.6 * u_speed)\n"
          "      * CASE WHEN airport_trip THEN 1.9 ELSE 1 END AS mph\n"
          "    FROM d),\n");
  sb_addf(&b,
          "  f AS (SELECT e.*, (round(dist / mph * 3600) + 90)::BIGINT AS dur_s,\n"
          "    CASE WHEN u_pay < 0.74 THEN 'Credit card' WHEN u_pay < 0.95 THEN 'Cash'\n"
          "         WHEN u_pay < 0.985 THEN 'No charge' ELSE 'Dispute' END AS payment,\n"
          "    CASE WHEN (pu_id = 132 AND dz_manh) OR (dz_id = 132 AND pu_manh) THEN 70.00\n"
          "         ELSE round(3.00 + 3.50 * dist + 0.245 * (dist / mph * 60), 2) END::DECIMAL(10,2) AS fare\n"
          "    FROM e),\n");
  sb_addf(&b,
          "  g AS (SELECT f.*,\n"
          "    CASE WHEN u_pay < 0.74 AND u_tip >= 0.12 THEN round(fare * (0.10 + 0.20 * (u_tip - 0.12) / 0.88), 2)\n"
          "         ELSE 0 END::DECIMAL(10,2) AS tip,\n"
          "    CASE WHEN airport_trip AND u_toll < 0.5 THEN 6.94 ELSE 0 END::DECIMAL(10,2) AS tolls,\n"
          "    CASE WHEN pu_manh OR dz_manh THEN 2.50 ELSE 0 END::DECIMAL(10,2) AS congestion,\n"
          "    CASE WHEN pu_id IN (132, 138) THEN 1.75 ELSE 0 END::DECIMAL(10,2) AS apt_fee FROM f)\n");
  sb_addf(&b,
          "  SELECT (i + 1)::BIGINT AS trip_id,\n"
          "    (CASE WHEN u_vendor < 0.26 THEN 1 WHEN u_vendor < 0.99 THEN 2 WHEN u_vendor < 0.995 THEN 6 ELSE 7 END)::INTEGER\n"
          "      AS vendor_id,\n"
          "    pickup AS pickup_datetime, pickup + to_seconds(dur_s) AS dropoff_datetime,\n"
          "    (CASE WHEN u_pass < 0.72 THEN 1 WHEN u_pass < 0.86 THEN 2 WHEN u_pass < 0.91 THEN 3\n"
          "          WHEN u_pass < 0.94 THEN 4 WHEN u_pass < 0.97 THEN 5 ELSE 6 END)::INTEGER AS passenger_count,\n"
          "    dist::DOUBLE AS trip_distance, pu_id::INTEGER AS pickup_zone_id, zone_name(pu) AS pickup_zone,\n"
          "    dz_id::INTEGER AS dropoff_zone_id, zone_name(dz) AS dropoff_zone, payment AS payment_type,\n"
          "    fare AS fare_amount, tip AS tip_amount, tolls AS tolls_amount, congestion AS congestion_surcharge,\n"
          "    apt_fee AS airport_fee, (fare + tip + tolls + congestion + apt_fee + 1.50)::DECIMAL(10,2) AS total_amount\n"
          "  FROM g\n) TO ");
  sb_add_literal(&b, path);
  sb_addf(&b, " (FORMAT parquet)");
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ---- files ------------------------------------------------------------------------------------------------ */

static int write_text(const char *path, const char *text, sp_error *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return sp_fail(err, SP_EIO, "could not create file \"%s\": %s", path, strerror(errno));
  size_t n = strlen(text);
  bool ok = fwrite(text, 1, n, f) == n;
  ok = (fclose(f) == 0) && ok;
  if (!ok) return sp_fail(err, SP_EIO, "could not write file \"%s\": %s", path, strerror(errno));
  return SP_OK;
}

/* Writes dir/name through dir/.name.tmp and a rename. */
static int write_file_atomic(const char *dir, const char *name, const char *text, sp_error *err) {
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  SP_TRY(write_text(tmp, text, err));
  if (rename(tmp, dst) != 0) return sp_fail(err, SP_EIO, "could not rename \"%s\": %s", tmp, strerror(errno));
  return SP_OK;
}

static char *zones_csv(void) {
  strbuf b = {0};
  sb_addf(&b, "zone_id,zone,borough,service_zone\n");
  for (size_t i = 0; i < N_ZONES; i++)
    sb_addf(&b, "%d,%s,%s,%s\n", ZONES[i].id, ZONES[i].name, ZONES[i].borough, ZONES[i].service_zone);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

static int run_sql(duckdb_connection con, const char *sql, sp_error *err) {
  duckdb_result res;
  int rc = SP_OK;
  if (duckdb_query(con, sql, &res) == DuckDBError)
    rc = sp_fail(err, SP_EINTERNAL, "duckdb: %s", duckdb_result_error(&res));
  duckdb_destroy_result(&res);
  return rc;
}

/* Generates trips.parquet into dir (through a temporary name). */
static int write_trips(const char *dir, int64_t rows, sp_error *err) {
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/.trips.parquet.tmp", dir);
  snprintf(dst, sizeof dst, "%s/trips.parquet", dir);
  char *sql = trips_copy_sql(rows, tmp);
  if (!sql) return sp_fail(err, SP_ENOMEM, "out of memory building the trips query");
  duckdb_database db = NULL;
  duckdb_connection con = NULL;
  int rc = SP_OK;
  if (duckdb_open(NULL, &db) == DuckDBError || duckdb_connect(db, &con) == DuckDBError)
    rc = sp_fail(err, SP_EINTERNAL, "could not open an in-memory duckdb database");
  if (rc == SP_OK) rc = run_sql(con, sql, err);
  if (rc == SP_OK && rename(tmp, dst) != 0)
    rc = sp_fail(err, SP_EIO, "could not rename \"%s\": %s", tmp, strerror(errno));
  if (rc != SP_OK) remove(tmp);
  duckdb_disconnect(&con);
  duckdb_close(&db);
  free(sql);
  return rc;
}

static bool file_exists(const char *dir, const char *name) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* True when dir already holds exactly what this invocation would write. */
static bool up_to_date(const char *dir, const char *stamp, bool only_trips) {
  char path[4096], have[256] = {0};
  snprintf(path, sizeof path, "%s/.gen_quickstart", dir);
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t n = fread(have, 1, sizeof have - 1, f);
  fclose(f);
  have[n] = '\0';
  if (strcmp(have, stamp) != 0 || !file_exists(dir, "trips.parquet")) return false;
  return only_trips || (file_exists(dir, "zones.csv") && file_exists(dir, "vendors.jsonl"));
}

static int make_dirs(const char *dir, sp_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return sp_fail(err, SP_EIO, "could not create folder \"%s\": %s", path, strerror(errno));
    *p = '/';
  }
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return sp_fail(err, SP_EIO, "could not create folder \"%s\": %s", path, strerror(errno));
  return SP_OK;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int generate(const char *dir, int64_t rows, bool only_trips, bool force, sp_error *err) {
  char stamp[256];
  snprintf(stamp, sizeof stamp, "gen_quickstart v%d rows=%" PRId64 " only_trips=%d\n", GEN_VERSION, rows,
           only_trips ? 1 : 0);
  if (!force && up_to_date(dir, stamp, only_trips)) return SP_OK;
  double t0 = now_s();
  SP_TRY(make_dirs(dir, err));
  if (!only_trips) {
    char *csv = zones_csv();
    if (!csv) return sp_fail(err, SP_ENOMEM, "out of memory building zones.csv");
    int rc = write_file_atomic(dir, "zones.csv", csv, err);
    free(csv);
    SP_TRY(rc);
    SP_TRY(write_file_atomic(dir, "vendors.jsonl", VENDORS_JSONL, err));
  }
  SP_TRY(write_trips(dir, rows, err));
  SP_TRY(write_file_atomic(dir, ".gen_quickstart", stamp, err));
  fprintf(stderr, "gen_quickstart: wrote %" PRId64 " trips%s to %s in %.1f s\n", rows,
          only_trips ? "" : ", zones and vendors", dir, now_s() - t0);
  return SP_OK;
}

static void usage(void) {
  fprintf(stderr, "usage: gen_quickstart [--rows N] [--only trips] [--force] OUTDIR\n"
                  "  writes OUTDIR/trips.parquet (N rows, default 300000), zones.csv and vendors.jsonl;\n"
                  "  the same bytes every run; does nothing when OUTDIR is already up to date\n");
}

int main(int argc, char **argv) {
  int64_t rows = 300000;
  bool only_trips = false, force = false;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
      char *end;
      rows = strtoll(argv[++i], &end, 10);
      if (*end || rows <= 0) { usage(); return 2; }
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && strcmp(argv[i + 1], "trips") == 0) {
      only_trips = true;
      i++;
    } else if (strcmp(argv[i], "--force") == 0) {
      force = true;
    } else if (argv[i][0] != '-' && !dir) {
      dir = argv[i];
    } else {
      usage();
      return 2;
    }
  }
  if (!dir) { usage(); return 2; }
  sp_error err = {0};
  if (generate(dir, rows, only_trips, force, &err) != SP_OK) {
    fprintf(stderr, "gen_quickstart: %s\n", err.msg);
    return 1;
  }
  return 0;
}
