/**
 * The control socket holds against clients that misbehave, spoken to with raw sockets: one that
 * pipelines requests and never reads the replies, a subscriber that never reads its events, and a
 * thousand connections each holding an unfinished line. None grows the agent without bound, and
 * the CLI and the view keep working meanwhile.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { once } from 'events';
import { Env, makeEnv, writeTree } from './helpers';
import { socketPath } from '../../shared/paths';
import { eventually } from '../wait';

const MB = 2 ** 20;

describe('control socket: limits per client', function () {
  let e: Env;
  let pid: number;
  let sock: string;
  /** The agent's resident memory, in bytes. */
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const viewWorks = async () => {
    await e.ok('status');
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'bin/tool'), 'utf8'), 'base\n');
  };

  before(async () => {
    e = makeEnv();
    writeTree(e.base, { 'bin/tool': 'base\n' });
    writeTree(path.join(e.dir, 'src'), { 'lib/x': 'x\n' });
    // Layers with many excludes (as if edited by hand): every state event is about 800 KB.
    for (let i = 0; i < 5; i++) await e.ok('layer', 'create', `L${i}`, '--from', path.join(e.dir, 'src'));
    for (let i = 1; i < 5; i++) {
      const file = path.join(e.home, 'layers', `L${i}`, 'layer.json');
      const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
      spec.excludes = Array.from({ length: 2000 }, (_, j) => `/excluded/${'x'.repeat(80)}/${j}`);
      fs.writeFileSync(file, JSON.stringify(spec));
    }
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    pid = (await e.json<{ pid: number }>('status')).pid;
    sock = socketPath(e.home);
  });
  after(async () => e.cleanup());

  it('stops reading from a client that never reads its replies', async () => {
    const before = rss();
    const s = net.connect(sock);
    s.on('error', () => {});
    await once(s, 'connect');
    s.pause(); // never reads
    const chunk = Buffer.from('{"id":1,"method":"view.list","params":{}}\n'.repeat(1000));
    const target = 16 * MB;
    let sent = 0;
    while (sent < target) {
      sent += chunk.length;
      if (s.write(chunk)) continue;
      const drained = await Promise.race([once(s, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
      if (!drained) break;
    }
    assert.ok(sent < target, `the agent read all ${sent} bytes of requests without its replies being read`);
    const grown = rss() - before;
    assert.ok(grown < 100 * MB, `the agent grew by ${Math.round(grown / MB)} MB`);
    await viewWorks();
    s.destroy();
  });

  it('drops a subscriber that never reads its events', async () => {
    const s = net.connect(sock);
    s.on('error', () => {});
    let closed = false;
    s.on('close', () => (closed = true));
    await once(s, 'connect');
    s.write('{"id":1,"method":"subscribe","params":{}}\n');
    s.pause();
    const log = path.join(e.home, 'agent.log');
    const dropped = () => fs.readFileSync(log, 'utf8').includes('[control] dropped a client that left');
    for (let i = 0; i < 40 && !dropped(); i++) await e.ok(i % 2 ? 'deactivate' : 'activate', 'L0');
    assert.ok(dropped(), 'the agent logged the drop');
    s.resume(); // read what reached the socket, then the end
    await eventually('the connection closed', () => closed);
    await viewWorks();
  });

  it('closes a thousand connections holding unfinished lines: at once past the total, the rest after a timeout', async () => {
    const before = rss();
    const line = '{"id":1,"method":"status","params":{"x":"' + 'y'.repeat(200 * 1024); // no newline
    const clients = Array.from({ length: 1000 }, () => {
      const c = { s: net.connect(sock), closed: false, got: '' };
      c.s.setEncoding('utf8');
      c.s.on('data', (d: string) => (c.got += d));
      c.s.on('error', () => {});
      c.s.on('close', () => (c.closed = true));
      c.s.write(line);
      return c;
    });
    await eventually(
      'every unfinished line sent or refused',
      () => clients.every((c) => c.closed || (c.s.writableLength === 0 && !c.s.connecting)),
      60000,
    );
    const grown = rss() - before;
    assert.ok(grown < 100 * MB, `the agent grew by ${Math.round(grown / MB)} MB`);
    await viewWorks();
    const early = clients.filter((c) => c.got.includes('E_TOO_LARGE')).length;
    assert.ok(early > 0, 'some were refused past the total');
    await eventually('all connections closed', () => clients.every((c) => c.closed), 60000);
    const late = clients.filter((c) => c.got.includes('stayed unfinished (no newline) for 10 s')).length;
    assert.ok(late > 0, 'the rest were closed after the timeout');
    assert.strictEqual(early + late, 1000);
    await viewWorks();
  });
});
