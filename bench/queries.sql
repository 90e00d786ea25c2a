-- Benchmark queries for `make bench` (bench/run.sh). Each query starts with a "-- name: <id>" line; other
-- comment lines are ignored. {table} is replaced by the dataset under test (trips_arrow, trips_duckdb,
-- trips_federated in spiced) and by the same data in the embedded DuckDB (a table, or read_parquet for the
-- federated comparison). Every query has an ORDER BY or returns one row, so both sides return the same rows
-- in the same order and bench_sql can compare them value by value.

-- name: q01_count_filter
SELECT count(*) AS trips FROM {table} WHERE trip_distance > 5;

-- name: q02_payment_totals
SELECT payment_type, count(*) AS trips, sum(total_amount) AS total, avg(tip_amount) AS avg_tip
FROM {table} GROUP BY payment_type ORDER BY payment_type;

-- name: q03_top_pickup_zones
SELECT pickup_zone, count(*) AS trips, avg(fare_amount) AS avg_fare
FROM {table} GROUP BY pickup_zone ORDER BY trips DESC, pickup_zone LIMIT 10;

-- name: q04_daily_revenue
SELECT date_trunc('day', pickup_datetime) AS day, count(*) AS trips, sum(total_amount) AS revenue
FROM {table} GROUP BY day ORDER BY day;

-- name: q05_time_window
SELECT count(*) AS trips, sum(fare_amount) AS fares, max(trip_distance) AS longest
FROM {table}
WHERE pickup_datetime >= TIMESTAMP '2024-01-10 00:00:00' AND pickup_datetime < TIMESTAMP '2024-01-12 00:00:00'
  AND passenger_count >= 2;

-- name: q06_route_pairs
SELECT count(DISTINCT pickup_zone_id * 1000 + dropoff_zone_id) AS routes FROM {table};

-- name: q07_vendor_passengers
SELECT vendor_id, passenger_count, count(*) AS trips, avg(trip_distance) AS avg_distance, max(total_amount) AS max_total
FROM {table} GROUP BY vendor_id, passenger_count ORDER BY vendor_id, passenger_count;

-- name: q08_tip_rate_routes
SELECT pickup_zone, dropoff_zone, count(*) AS trips, avg(tip_amount / fare_amount) AS tip_rate
FROM {table} WHERE payment_type = 'Credit card'
GROUP BY pickup_zone, dropoff_zone HAVING count(*) > 100
ORDER BY tip_rate DESC, pickup_zone, dropoff_zone LIMIT 20;

-- name: q09_point_lookup
SELECT trip_id, pickup_datetime, pickup_zone, dropoff_zone, total_amount FROM {table} WHERE trip_id = 123457;
