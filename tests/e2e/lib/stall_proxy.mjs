// SPDX-License-Identifier: Apache-2.0
//
// A TCP proxy that can stall: it forwards every connection to a real server (PostgreSQL, MariaDB) until told
// to stall, then stops forwarding in both directions without closing anything — a black hole, as a hung
// server or a dead network path looks to a client: its connection stays open, its writes are taken by the
// kernel, and no answer ever comes. Connections that arrive while stalled are accepted and held the same
// way. resume() forwards again, everything held included, in order.
//
//   import { startStallProxy } from './lib/stall_proxy.mjs';
//   const proxy = await startStallProxy({ port: pg.port });   // listens on 127.0.0.1:<proxy.port>
//   proxy.stall();  …  proxy.resume();
//   proxy.connections   // client connections open now
//   await proxy.close();
//
// A stall pauses every socket: node stops reading them, so the peers' bytes wait in the kernel's buffers
// (nothing is read and dropped). A close seen while stalled is passed on at resume().
import net from 'node:net';

class Pair {
  constructor(proxy, client) {
    this.proxy = proxy;
    this.client = client;
    this.server = net.connect({ host: proxy.host, port: proxy.port_ });
    this.held = new Map([[client, []], [this.server, []]]); // bytes read for the other side before a stall
    this.closing = false;
    for (const [from, to] of [[client, this.server], [this.server, client]]) {
      from.setNoDelay(true);
      from.on('data', (chunk) => (proxy.stalled ? this.held.get(to).push(chunk) : to.write(chunk)));
      from.on('error', () => {}); // a reset ends the pair through 'close'
      from.on('close', () => this.closed());
    }
    if (proxy.stalled) this.pause();
  }

  pause() {
    this.client.pause();
    this.server.pause();
  }

  resume() {
    for (const [to, chunks] of this.held) {
      for (const c of chunks) if (!to.destroyed) to.write(c);
      chunks.length = 0;
    }
    this.client.resume();
    this.server.resume();
    if (this.closing) this.closed();
  }

  // One side went away: end the other, unless stalled (a black hole passes nothing on, closes included).
  closed() {
    this.closing = true;
    if (this.proxy.stalled) return;
    this.client.destroy();
    this.server.destroy();
    this.proxy.pairs.delete(this);
  }
}

export class StallProxy {
  constructor({ host, port }) {
    this.host = host;
    this.port_ = port; // the upstream server's port
    this.stalled = false;
    this.pairs = new Set();
    this.server = net.createServer((client) => this.pairs.add(new Pair(this, client)));
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  get connections() {
    return this.pairs.size;
  }

  stall() {
    this.stalled = true;
    for (const p of this.pairs) p.pause();
  }

  resume() {
    this.stalled = false;
    for (const p of [...this.pairs]) p.resume();
  }

  close() {
    this.stalled = false;
    for (const p of [...this.pairs]) p.closed();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// Starts a proxy on a free loopback port that forwards to host:port (default host 127.0.0.1).
export function startStallProxy({ host = '127.0.0.1', port }) {
  return new StallProxy({ host, port }).listen();
}
