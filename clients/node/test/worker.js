// Starts a real `aitw serve` on a free loopback port for a test suite: the binary from $AITW_BIN or
// ../../build/tools/aitw, models from $AITW_MODEL_DIR (default ../../../shared/models).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const AITW = process.env.AITW_BIN || path.join(ROOT, 'build', 'tools', 'aitw');
const MODEL_DIR = process.env.AITW_MODEL_DIR || path.join(ROOT, '..', 'shared', 'models');
const SHARED = process.env.AITW_SHARED_DIR || path.dirname(MODEL_DIR);
const BUS_JPG = fs.readFileSync(path.join(SHARED, 'datasets', 'images', 'bus.jpg'));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.createConnection({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

// One worker process; start() again after stop() reuses the port (a restart, as a client sees it).
class Worker {
  constructor({ authToken } = {}) {
    if (!fs.existsSync(AITW)) throw new Error(`aitw binary '${AITW}' not found: build it or set AITW_BIN`);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aitw-node-test-'));
    this.args = [];
    if (authToken) {
      const file = path.join(this.dir, 'token');
      fs.writeFileSync(file, authToken);
      this.args.push('--auth-token-file', file);
    }
    this.log = '';
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.proc = spawn(AITW, ['serve', '--listen', `127.0.0.1:${this.port}`, '--model-dir', MODEL_DIR, ...this.args], {
      env: { ...process.env, AITW_MODEL_DIR: MODEL_DIR },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr.on('data', (d) => (this.log += d));
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.exited = exited;
    // Listening is what the client needs; poll for it (a failed start exits, and says why on stderr).
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`aitw serve exited ${this.proc.exitCode}:\n${this.log}`);
      if (await canConnect(this.port)) return this;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Resolves when `pred()` holds, checking on every client event and every 20 ms; rejects after `ms` with
// `what` (a safety net for a hung test, not a timing assertion).
function until(pred, what, ms = 30000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`gave up waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

module.exports = { Worker, BUS_JPG, ROOT, until };
