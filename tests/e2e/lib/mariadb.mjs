// SPDX-License-Identifier: Apache-2.0
//
// A throwaway MariaDB server for tests: mariadb-install-db into a temporary folder, mariadbd on a free
// loopback port (unix socket in the same folder, every statement in the general log), a database and a user
// with a password created over the socket as root, the `mariadb` client to talk to it; stopped and removed
// also when a test fails or node exits. Grant tables are on: passwords are checked.
//
//   import { startMariadb } from './lib/mariadb.mjs';
//   const db = await startMariadb();
//   db.sql('CREATE TABLE t (a int)');   // as root in the test database; returns the client's stdout
//   db.rows('SELECT …')                 // rows as arrays of the client's text (null for NULL)
//   db.params   // { mysql_host, mysql_tcp_port, mysql_db, mysql_user, mysql_pass, mysql_sslmode } for a spicepod
//   await db.stopServer(); await db.start();  // simulate an outage
//   startMariadb({ serverArgs: ['--innodb-buffer-pool-size=1G'] })   // extra mariadbd options, after the defaults
//   await db.stop();
//
// As root the server runs with --user=root (no chown of the folder needed).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort, sleep } from './spiced.mjs';

function findBin(names, dirs = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
  for (const d of [...(process.env.PATH || '').split(':').filter(Boolean), ...dirs])
    for (const n of names) if (existsSync(join(d, n))) return join(d, n);
  return null;
}

const live = new Set();
process.on('exit', () => {
  for (const m of live) m.cleanupSync();
});

export class Mariadb {
  constructor({ dir, port, user, password, db, serverArgs = [] }) {
    Object.assign(this, { dir, port, user, password, db, serverArgs });
    this.data = join(dir, 'data');
    this.socket = join(dir, 'sock');
    this.logPath = join(dir, 'general.log');
    this.errPath = join(dir, 'error.log');
    this.host = '127.0.0.1';
    this.params = { mysql_host: this.host, mysql_tcp_port: String(port), mysql_db: db, mysql_user: user,
                    mysql_pass: password, mysql_sslmode: 'disabled' };
    this.asRoot = process.getuid && process.getuid() === 0;
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  errorLog() {
    try {
      return readFileSync(this.errPath, 'utf8');
    } catch {
      return '';
    }
  }

  async start() {
    const args = ['--no-defaults', `--datadir=${this.data}`, `--socket=${this.socket}`, `--port=${this.port}`,
                  '--bind-address=127.0.0.1', `--pid-file=${join(this.dir, 'pid')}`, `--log-error=${this.errPath}`,
                  '--general-log=1', `--general-log-file=${this.logPath}`, '--innodb-buffer-pool-size=64M',
                  '--innodb-flush-log-at-trx-commit=0', '--skip-name-resolve', '--max-connections=50'];
    if (this.asRoot) args.push('--user=root');
    args.push(...this.serverArgs); // the last of a repeated option wins
    this.proc = spawn(findBin(['mariadbd', 'mysqld']), args, { stdio: 'ignore' });
    this.running = true;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    for (let i = 0; i < 600; i++) {
      if (this.proc.exitCode !== null) break;
      const r = spawnSync(this.client, ['--no-defaults', `--socket=${this.socket}`, '-uroot', '-e', 'SELECT 1'],
                          { encoding: 'utf8' });
      if (r.status === 0) return;
      await Promise.race([sleep(100), exited]);
    }
    this.running = false;
    throw new Error(`mariadbd did not start:\n${this.errorLog()}`);
  }

  // Stops the server (SIGTERM: a clean shutdown; SIGKILL after 60 s) and waits for it to exit.
  async stopServer() {
    if (!this.running || !this.proc) return;
    const proc = this.proc;
    this.running = false;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60000);
    await exited;
    clearTimeout(timer);
  }

  // The mariadb client as root over the socket, in the test database; returns stdout.
  sql(sql, { db = this.db, args = [] } = {}) {
    return execFileSync(this.client, ['--no-defaults', '--default-character-set=utf8mb4', `--socket=${this.socket}`, '-uroot', ...args, db],
                        { input: sql, encoding: 'utf8', maxBuffer: 1 << 28 });
  }

  // Rows as arrays of what `mariadb --batch` prints, with its escapes (\t \n \\ \0) undone; null for NULL.
  rows(sql) {
    const out = this.sql(sql, { args: ['--batch', '--skip-column-names'] });
    const unescape = (v) => v.replace(/\\(.)/g, (_, c) => ({ t: '\t', n: '\n', '0': '\0', '\\': '\\' }[c] ?? c));
    return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t').map((v) => (v === 'NULL' ? null : unescape(v))));
  }

  cleanupSync() {
    if (this.running && this.proc) {
      try {
        this.proc.kill('SIGKILL'); // no clean shutdown here: the folder goes anyway
      } catch {
        // already gone
      }
      this.running = false;
    }
    if (process.env.SPICEC_E2E_KEEP !== '1') rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  async stop() {
    await this.stopServer();
    this.cleanupSync();
  }
}

// Starts a fresh server. Throws (after cleaning up) when MariaDB is not installed or does not start.
export async function startMariadb({ user = 'spice', password = 'sp1ce-Secret', db = 'testdb', serverArgs = [] } = {}) {
  const install = findBin(['mariadb-install-db', 'mysql_install_db']);
  const client = findBin(['mariadb', 'mysql']);
  if (!install || !client || !findBin(['mariadbd', 'mysqld']))
    throw new Error('MariaDB (mariadb-install-db, mariadbd, mariadb) not found: run scripts/deps.sh');
  const dir = mkdtempSync(join(tmpdir(), 'spicec-mariadb-'));
  const m = new Mariadb({ dir, port: await freePort(), user, password, db, serverArgs });
  m.client = client;
  live.add(m);
  try {
    const args = ['--no-defaults', `--datadir=${m.data}`, '--auth-root-authentication-method=normal',
                  '--skip-test-db', '--skip-name-resolve'];
    if (m.asRoot) args.push('--user=root');
    const r = spawnSync(install, args, { encoding: 'utf8', cwd: dir, timeout: 120000 });
    if (r.status !== 0) throw new Error(`mariadb-install-db failed (${r.status}): ${r.stderr}${r.stdout}`);
    await m.start();
    const q = (s) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    m.sql(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4;
           CREATE USER '${q(user)}'@'127.0.0.1' IDENTIFIED BY '${q(password)}';
           CREATE USER '${q(user)}'@'localhost' IDENTIFIED BY '${q(password)}';
           GRANT ALL ON \`${db}\`.* TO '${q(user)}'@'127.0.0.1';
           GRANT ALL ON \`${db}\`.* TO '${q(user)}'@'localhost';`, { db: 'mysql' });
  } catch (e) {
    m.cleanupSync();
    throw e;
  }
  return m;
}
