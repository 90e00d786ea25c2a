// SPDX-License-Identifier: Apache-2.0
//
// Shared helpers of the bench sections (bench/sections/*.mjs). A section measures side by side in one run and
// writes one part file (JSON) that bench/report.mjs turns into bench/results/latest.{md,json,png}:
//
//   { "section": "http_rps", "title": "...", "notes": ["..."], "measures": [measure, ...] }
//
// A measure is { name, value, unit, limit, ratio, goal, met, min, median, max, reps }: `value` is the median of
// the spicec side, `limit` the same statistic of what it is compared with (the limit it cannot beat, or the
// baseline), ratio = value / limit (or limit / value for rates, so that a ratio below 1 is always "slower"),
// `goal` the issue's goal for that ratio and `met` whether it is met. Nothing here fails on a slow number.
import { writeFileSync } from 'node:fs';

export const BUILD = process.env.SPICEC_BUILD;
export const QUICK = process.env.SPICEC_BENCH_QUICK === '1';
export const PARTS = process.env.SPICEC_BENCH_PARTS;
export const DATA = process.env.SPICEC_BENCH_DATA;

// A spicepod serving the trips Parquet file of the run (SPICEC_BENCH_DATA) as `trips`, arrow-accelerated.
export function tripsPod(name, { resultsCache = true } = {}) {
  return `version: v1\nkind: Spicepod\nname: ${name}\n` +
    (resultsCache ? '' : 'runtime:\n  results_cache:\n    enabled: false\n') +
    `datasets:\n  - from: file:${DATA}\n    name: trips\n    acceleration:\n      enabled: true\n`;
}

export function stats(xs) {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { min: v[0], median, max: v[v.length - 1], reps: v.length };
}

// A measure comparing the spicec samples with the limit's samples. `higherIsBetter` for rates (rows/s, GB/s,
// requests/s): the ratio is spicec / limit then, and a goal is met when ratio >= goal; for times it is
// spicec / limit and met when ratio <= goal.
export function compare(name, unit, spicecSamples, limitSamples, { goal = null, higherIsBetter = false } = {}) {
  const s = stats(spicecSamples);
  const l = limitSamples ? stats(limitSamples) : null;
  const ratio = l ? s.median / l.median : null;
  const met = goal === null || ratio === null ? null : higherIsBetter ? ratio >= goal : ratio <= goal;
  return { name, value: s.median, unit, limit: l ? l.median : null, ratio, goal, met, min: s.min, median: s.median,
           max: s.max, reps: s.reps, higher_is_better: higherIsBetter };
}

// A plain figure with no limit to compare with (a latency percentile, a load time).
export function figure(name, unit, value, { goal = null, lowerIsBetter = true } = {}) {
  const met = goal === null ? null : lowerIsBetter ? value <= goal : value >= goal;
  return { name, value, unit, limit: null, ratio: null, goal, met, higher_is_better: !lowerIsBetter };
}

export function writePart(section, title, measures, notes = []) {
  const file = `${PARTS}/${section}.json`;
  writeFileSync(file, JSON.stringify({ section, title, notes, measures }, null, 2));
  for (const m of measures) {
    const r = m.ratio === null || m.ratio === undefined ? '' : `  ratio ${m.ratio.toFixed(3)}`;
    const g = m.goal === null || m.goal === undefined ? '' : `  goal ${m.goal}${m.met ? ' (met)' : ' (not met)'}`;
    console.log(`  ${m.name}: ${fmt(m.value)} ${m.unit}${m.limit != null ? ` vs ${fmt(m.limit)}` : ''}${r}${g}`);
  }
}

export function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 0.1 ? x.toFixed(3) : x.toPrecision(3);
}

// Peak resident set (VmHWM) of a process in MiB, or null.
export async function peakRssMiB(pid) {
  const { readFileSync } = await import('node:fs');
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
