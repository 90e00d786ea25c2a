-- The golden query set (issue 4): every query runs on every path of tests/e2e/golden.test.mjs (each accelerator
-- and each federated source holding the same data) and every path must return the same rows. {c} is the
-- customers table and {o} the orders table of the path under test. Every query orders its rows completely.

-- name: g01_aggregate_by_country
SELECT country, count(*) AS customers, sum(balance) AS total_balance, min(created_at) AS first_created
FROM {c} GROUP BY country ORDER BY country;

-- name: g02_join_totals_unicode_names
SELECT c.name, count(o.id) AS orders, sum(o.amount * o.qty) AS spent
FROM {c} c JOIN {o} o ON o.customer_id = c.id
GROUP BY c.name ORDER BY spent DESC, c.name LIMIT 15;

-- name: g03_window_top2_per_customer
SELECT customer_id, id, amount, rn FROM (
  SELECT customer_id, id, amount, row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC, id) AS rn
  FROM {o}) t
WHERE rn <= 2 AND customer_id <= 10 ORDER BY customer_id, rn;

-- name: g04_nulls
SELECT count(*) AS all_rows, count(note) AS with_note, count(*) - count(note) AS without_note,
       sum(CASE WHEN note IS NULL THEN qty ELSE 0 END) AS qty_without_note
FROM {o};

-- name: g05_null_booleans_and_coalesce
SELECT coalesce(CAST(vip AS INTEGER), -1) AS vip_class, count(*) AS n, sum(coalesce(balance, 0)) AS balance
FROM {c} GROUP BY 1 ORDER BY 1;

-- name: g06_monthly_timestamps
SELECT date_trunc('month', ordered_at) AS month, count(*) AS orders, sum(amount) AS amount
FROM {o} WHERE ordered_at >= TIMESTAMP '2024-01-01 00:00:00' AND ordered_at < TIMESTAMP '2024-07-01 00:00:00'
GROUP BY 1 ORDER BY 1;

-- name: g07_empty_result
SELECT id, amount FROM {o} WHERE amount < 0 ORDER BY id;

-- name: g08_unicode_filters
SELECT id, name, country FROM {c}
WHERE name IN ('Zoë Šimek', 'Łukasz Żółw', '東京商事', 'Ñandú SA') OR name LIKE 'Zo%' ORDER BY id;

-- name: g09_decimal_arithmetic
SELECT sum(amount) AS amount, max(amount) AS max_amount, min(amount) AS min_amount, sum(amount * qty) AS gross,
       round(avg(amount), 4) AS avg_amount
FROM {o} WHERE qty BETWEEN 2 AND 7;

-- name: g10_having_semi_join
SELECT customer_id, count(*) AS n FROM {o}
WHERE customer_id IN (SELECT id FROM {c} WHERE country = 'PL')
GROUP BY customer_id HAVING count(*) >= 3 ORDER BY n DESC, customer_id;

-- name: g11_left_join_missing
SELECT c.id, c.name, count(o.id) AS orders FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.id
GROUP BY c.id, c.name HAVING count(o.id) = 0 ORDER BY c.id;

-- name: g12_point_lookup
SELECT id, customer_id, amount, qty, note, ordered_at FROM {o} WHERE id = 137;
