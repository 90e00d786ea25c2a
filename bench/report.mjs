// SPDX-License-Identifier: Apache-2.0
//
// Assembles the parts written by one `make bench` run (bench/results/parts/*.json: the sections' own parts and
// bench_sql's --json files) into
//   bench/results/latest.json  {generated, host, quick, sections: [...], measures: [{name, value, unit, limit,
//                              ratio, goal, met, ...}]}, each measure's name prefixed by its section;
//   bench/results/latest.md    one table per section;
//   bench/results/latest.png   the per-query ratios (spicec ÷ embedded DuckDB) drawn by gnuplot.
//   node bench/report.mjs RESULTS_DIR [--quick]
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { fmt } from './lib.mjs';

const dir = process.argv[2];
const quick = process.argv.includes('--quick');
const partsDir = join(dir, 'parts');
const TITLES = {
  queries: 'bench/queries.sql on the trips data: spicec over HTTP ÷ embedded DuckDB on the same data',
};

const sections = [];
for (const f of readdirSync(partsDir).filter((f) => f.endsWith('.json')).sort()) {
  const doc = JSON.parse(readFileSync(join(partsDir, f), 'utf8'));
  const section = doc.section ?? f.replace(/\.json$/, '');
  const base = section.split('_')[0];
  const notes = doc.notes ?? [];
  if (doc.rows !== undefined) notes.push(`${doc.rows} rows; median of ${doc.reps} repetition(s); DuckDB ${doc.duckdb_version}`);
  sections.push({ section, title: doc.title ?? TITLES[base] ?? `${section}: spicec over HTTP ÷ embedded DuckDB`, notes,
                  measures: doc.measures });
}

const all = sections.flatMap((s) => s.measures.map((m) => ({ ...m, name: `${s.section}/${m.name}` })));
writeFileSync(join(dir, 'latest.json'), JSON.stringify({
  generated: new Date().toISOString(), host: hostname(), cores: cpus().length, quick,
  sections: sections.map(({ section, title, notes }) => ({ section, title, notes })), measures: all,
}, null, 2));

// A measure may carry `check` (its answers vs the reference: "ok" or the difference) and `ratio_min`/`ratio_max`
// (the per-repetition ratios' range, shown beside the ratio of the medians).
const yes = (m) => (m.check !== undefined && m.check !== 'ok' ? `**wrong: ${m.check.replace(/\|/g, '/')}**`
  : m.met === null || m.met === undefined ? '' : m.met ? 'yes' : '**no**');
const ratio = (m) => fmt(m.ratio) + (m.ratio_min === undefined ? '' : ` (${fmt(m.ratio_min)} … ${fmt(m.ratio_max)})`);
const goal = (m) => (m.goal === null || m.goal === undefined ? '' : `${m.higher_is_better ? '≥' : '≤'} ${m.goal}`);
const range = (m) => (m.min === undefined ? '' : `${fmt(m.min)} … ${fmt(m.max)}`);
let md = `# spicec benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${quick ? ' (quick)' : ''}\n\n` +
  `${cpus().length} cores. Ratios are measured side by side in this one run; see docs/benchmarks.md.\n`;
for (const s of sections) {
  md += `\n## ${s.title}\n\n${s.notes.map((n) => `${n}\n`).join('')}\n`;
  md += '| measure | spicec | unit | compared with | ratio | min … max | goal | met |\n|---|---:|---|---:|---:|---|---|---|\n';
  for (const m of s.measures)
    md += `| ${m.name} | ${fmt(m.value)} | ${m.unit} | ${fmt(m.limit ?? m.baseline)} | ${ratio(m)} | ${range(m)} | ${goal(m)} | ${yes(m)} |\n`;
}
writeFileSync(join(dir, 'latest.md'), md);
process.stdout.write(md);

// The chart: one bar per query and target, for the sections that time queries against DuckDB.
const perQuery = all.filter((m) => m.unit === 'ms' && m.ratio != null && m.baseline !== undefined);
if (perQuery.length > 0) {
  const dat = join(dir, 'ratios.dat');
  writeFileSync(dat, perQuery.map((m, i) => `${i} "${m.name.replace(/"/g, '')}" ${m.ratio}`).join('\n') + '\n');
  const png = join(dir, 'latest.png');
  const script = `set terminal pngcairo size ${Math.max(900, perQuery.length * 18)},520 font ",9"
set output "${png}"
set termoption noenhanced
set title "spicec ÷ embedded DuckDB per query (1 = as fast; lower is better)"
set style fill solid 0.8
set boxwidth 0.8
set ylabel "ratio"
set xtics rotate by 60 right
set grid ytics
set yrange [0:*]
plot "${dat}" using 1:3:xtic(2) with boxes notitle lc rgb "#4477aa", 1 with lines dt 2 lc rgb "#aa3333" title "1.0"
`;
  try {
    execFileSync('gnuplot', [], { input: script });
    console.log(`\nchart: ${png}`);
  } catch (e) {
    if (existsSync('/usr/bin/gnuplot')) throw e;
    console.log('\n(no chart: gnuplot is not installed)');
  }
}
