// SPDX-License-Identifier: Apache-2.0
//
// A throwaway PostgreSQL server for tests: initdb into a temporary folder, start it on a free loopback port
// (unix socket in the same folder, wal_level=logical, every statement logged), create a database and a
// password user, talk to it with psql, stop it and remove the folder — also when a test fails or node exits.
//
//   import { startPostgres } from './lib/postgres.mjs';
//   const pg = await startPostgres();
//   pg.psql('CREATE TABLE t (a int)');            // runs as the superuser, returns stdout
//   pg.params   // { pg_host, pg_port, pg_db, pg_user, pg_pass, pg_sslmode } for a spicepod
//   await pg.stop();  // or pg.kill()/pg.start() to simulate an outage
//   const s = pg.session({ user: 'spice' });   // one long-lived psql: await s.query(sql) returns its output
//   startPostgres({ replication: true })        // the user may also stream logical replication (CDC tests)
//   startPostgres({ settings: { shared_buffers: '1GB' } })   // extra server settings (-c), after the defaults
//
// As root the server cannot run: the folder is given to the `postgres` system user (created by Debian's
// postgresql package) and the server commands run through `runuser -u postgres --`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from './spiced.mjs';

// Folder of initdb/pg_ctl/postgres: the PATH, then Debian's versioned folders (newest first), then /usr/local/bin.
export function findPgBin() {
  const candidates = [];
  for (const d of (process.env.PATH || '').split(':')) if (d) candidates.push(d);
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // no Debian layout
  }
  candidates.push('/usr/local/bin');
  for (const d of candidates)
    if (existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')) && existsSync(join(d, 'postgres'))) return d;
  return null;
}

const live = new Set();
process.on('exit', () => {
  for (const pg of live) pg.cleanupSync();
});

function postgresIds() {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

export class Postgres {
  constructor({ bin, dir, port, asUser, user, password, db, settings = {} }) {
    Object.assign(this, { bin, dir, port, asUser, user, password, db, settings });
    this.data = join(dir, 'data');
    this.logPath = join(dir, 'server.log');
    this.host = '127.0.0.1';
    this.params = { pg_host: this.host, pg_port: String(port), pg_db: db, pg_user: user, pg_pass: password, pg_sslmode: 'disable' };
  }

  // Runs a server command (initdb, pg_ctl) as the postgres user when we are root.
  run(tool, args, { allowFail = false } = {}) {
    const exe = join(this.bin, tool);
    const [cmd, argv] = this.asUser ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
    const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: this.dir, timeout: 120000 });
    if (r.status !== 0 && !allowFail)
      throw new Error(`${tool} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}\n${this.log()}`);
    return r;
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  start() {
    const opts = [
      `-p ${this.port}`, `-k ${this.dir}`, "-c listen_addresses=127.0.0.1", '-c wal_level=logical',
      '-c log_statement=all', '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off',
      '-c max_connections=50', '-c shared_buffers=64MB',
      ...Object.entries(this.settings).map(([k, v]) => `-c ${k}=${v}`), // later -c wins
    ].join(' ');
    this.run('pg_ctl', ['-D', this.data, '-l', this.logPath, '-o', opts, '-w', '-t', '60', 'start']);
    this.running = true;
  }

  // Stops the server (mode: fast | immediate).
  stopServer(mode = 'fast') {
    if (!this.running) return;
    this.run('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop'], { allowFail: true });
    this.running = false;
  }

  // psql as the superuser over the unix socket; returns stdout. Options: db, user, tuplesOnly (default true).
  psql(sql, { db = this.db, user = 'postgres', tuplesOnly = true, fieldSep = '|' } = {}) {
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', this.dir, '-p', String(this.port), '-U', user, '-d', db];
    if (tuplesOnly) args.push('-A', '-t', '-F', fieldSep);
    return execFileSync('psql', args, { input: sql, encoding: 'utf8', maxBuffer: 1 << 28 });
  }

  // Rows of a query as arrays of psql's text values (null for NULL), one row per line.
  rows(sql) {
    const US = '\x1f', RS = '\x1e';
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', this.dir, '-p', String(this.port), '-U', 'postgres', '-d',
                  this.db, '-A', '-t', '-F', US, '-R', RS, '-P', 'null=\x01NULL'];
    const out = execFileSync('psql', args, { input: sql, encoding: 'utf8', maxBuffer: 1 << 28 });
    const body = out.endsWith('\n') ? out.slice(0, -1) : out;
    return body.split(RS).filter((l) => l.length > 0).map((l) => l.split(US).map((v) => (v === '\x01NULL' ? null : v)));
  }

  // One psql process kept open (no start-up cost per statement): query(sql) resolves with what psql printed
  // for it once it has run (a statement's COMMIT has returned), and rejects on an error. close() ends it.
  session({ db = this.db, user = 'postgres' } = {}) {
    const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.dir, '-p', String(this.port), '-U', user, '-d', db];
    const proc = spawn('psql', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', errText = '', waiting = null, n = 0;
    const settle = () => {
      if (!waiting) return;
      const i = out.indexOf(waiting.marker);
      if (i >= 0) {
        const text = out.slice(0, i);
        out = out.slice(i + waiting.marker.length + 1);
        const w = waiting;
        waiting = null;
        w.resolve(text);
      }
    };
    proc.stdout.on('data', (d) => { out += d; settle(); });
    proc.stderr.on('data', (d) => { errText += d; });
    proc.on('exit', (code) => {
      if (waiting) waiting.reject(new Error(`psql exited (${code}): ${errText}`));
      waiting = null;
    });
    return {
      query(sql) {
        if (waiting) return Promise.reject(new Error('one query at a time'));
        const marker = `__spicec_done_${++n}__`;
        return new Promise((resolve, reject) => {
          waiting = { marker, resolve, reject };
          proc.stdin.write(`${sql}\n\\echo ${marker}\n`);
        });
      },
      close() {
        proc.stdin.end();
        return new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', () => resolve())));
      },
    };
  }

  cleanupSync() {
    try {
      this.stopServer('immediate');
    } catch {
      // best effort
    }
    if (process.env.SPICEC_E2E_KEEP !== '1') rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  async stop() {
    this.cleanupSync();
  }
}

// Starts a fresh server. Throws (after cleaning up) when PostgreSQL is not installed or does not start.
export async function startPostgres({ user = 'spice', password = 'sp1ce-Secret', db = 'testdb', replication = false,
                                     settings = {} } = {}) {
  const bin = findPgBin();
  if (!bin) throw new Error('PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: run scripts/deps.sh');
  const dir = mkdtempSync(join(tmpdir(), 'spicec-pg-'));
  let asUser = false;
  if (process.getuid && process.getuid() === 0) {
    const ids = postgresIds();
    if (!ids) throw new Error('running as root needs the postgres system user (Debian package postgresql)');
    chownSync(dir, ids.uid, ids.gid);
    chmodSync(dir, 0o755);
    asUser = true;
  }
  const pg = new Postgres({ bin, dir, port: await freePort(), asUser, user, password, db, settings });
  live.add(pg);
  try {
    pg.run('initdb', ['-D', pg.data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8',
                      '--locale=C', '--no-sync']);
    pg.start();
    pg.psql(`CREATE ROLE ${user} LOGIN PASSWORD '${password.replace(/'/g, "''")}';`, { db: 'postgres' });
    pg.psql(`CREATE DATABASE ${db} OWNER ${user};`, { db: 'postgres' });
    if (replication) pg.psql(`ALTER ROLE ${user} REPLICATION;`, { db: 'postgres' });
  } catch (e) {
    pg.cleanupSync();
    throw e;
  }
  return pg;
}
