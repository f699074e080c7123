/**
 * Bad input gets a clear error with a stable code, names what failed, and loses nothing.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { execFile } from 'child_process';
import { CLI, Env, makeEnv, writeTree } from './helpers';
import { socketPath } from '../../shared/paths';

function exchange(sock: string, payload: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = net.connect(sock);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        s.destroy();
        res(out);
      }
    });
    s.on('error', rej);
    s.on('close', () => res(out));
    s.write(payload);
  });
}

describe('errors: bad input is refused clearly and loses nothing', function () {
  let e: Env;
  let src: string;
  before(async () => {
    e = makeEnv();
    src = path.join(e.dir, 'src');
    writeTree(src, { 'bin/tool': 'layer\n', 'lib/x': 'x\n' });
    fs.symlinkSync('/etc', path.join(src, 'outside'));
    await e.ok('layer', 'create', 'good', '--from', src);
    await e.ok('layer', 'create', 'victim', '--from', src);
  });
  after(async () => e.cleanup());

  it('names the unknown layer and suggests what to do', async () => {
    const r = await e.cli('activate', 'nope');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_LAYER_UNKNOWN: no layer named "nope"/);
    assert.match(r.stderr, /strata layer list/);
  });

  it('says a layer is not active when swapping from it', async () => {
    const r = await e.cli('swap', 'good', 'victim');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_LAYER_INACTIVE: layer "good" is not active/);
    assert.match(r.stderr, /strata activate victim/);
  });

  it('refuses mapping destinations that escape the layer, keeping layer.json as it was', async () => {
    const file = path.join(e.home, 'layers/good/layer.json');
    const before = fs.readFileSync(file, 'utf8');
    for (const dest of ['../../etc', '/etc', 'lib/../../x']) {
      const r = await e.cli('layer', 'map', 'good', '/etc', dest);
      assert.strictEqual(r.code, 1, dest);
      assert.match(r.stderr, /E_MAPPING_ESCAPE/, dest);
    }
    const r = await e.cli('layer', 'map', 'good', '/x', 'outside');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_MAPPING_ESCAPE: .*mappings\[1\]\.destination: "outside" leads outside the layer through a symlink/);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), before);
  });

  it('reports a malformed layer.json by file and field, and keeps serving the other layers', async () => {
    const file = path.join(e.home, 'layers/victim/layer.json');
    const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
    spec.priority = 'high';
    spec.mappings[0].destination = '../escape';
    fs.writeFileSync(file, JSON.stringify(spec));
    const r = await e.cli('activate', 'victim');
    assert.strictEqual(r.code, 1);
    assert.ok(r.stderr.includes(`${file}: priority: must be an integer`), r.stderr);
    assert.ok(r.stderr.includes('mappings[0].destination'), r.stderr);
    const list = await e.json<{ name: string }[]>('layer', 'list');
    assert.deepStrictEqual(
      list.map((l) => l.name),
      ['good'],
    );
    assert.strictEqual(JSON.parse(fs.readFileSync(file, 'utf8')).priority, 'high', 'the broken file is left for the user to fix');
    fs.writeFileSync(file, 'not json {');
    const r2 = await e.cli('layer', 'show', 'victim');
    assert.match(r2.stderr, /E_LAYER_INVALID: .*layer\.json: not valid JSON/);
  });

  it('refuses a layer written by a newer Strata and upgrades an older one', async () => {
    const file = path.join(e.home, 'layers/victim/layer.json');
    fs.writeFileSync(file, JSON.stringify({ format: 99, name: 'victim', mappings: [] }));
    const r = await e.cli('layer', 'show', 'victim');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_LAYER_FORMAT: .*format: 99 was written by a newer Strata/);
    fs.writeFileSync(file, JSON.stringify({ format: 1, name: 'victim', map: { '/opt/v': 'lib' }, hide: ['/tmp/h'] }));
    const l = await e.json<{ mappings: unknown; deletes: string[]; format: number }>('layer', 'show', 'victim');
    assert.deepStrictEqual(l.mappings, [{ original: '/opt/v', destination: 'lib' }]);
    assert.deepStrictEqual(l.deletes, ['/tmp/h']);
    assert.strictEqual(l.format, 2);
  });

  it('refuses garbled, unknown and oversized control messages, and keeps serving', async () => {
    const sock = socketPath(e.home);
    assert.match(await exchange(sock, 'this is not json\n'), /"code":"E_BAD_REQUEST"/);
    assert.match(
      await exchange(sock, '{"id":7,"method":"format.disk","params":{}}\n'),
      /"id":7,"ok":false,"error":\{"code":"E_UNKNOWN_METHOD"/,
    );
    assert.match(
      await exchange(sock, '{"id":8,"method":"activate","params":{"names":"good"}}\n'),
      /E_BAD_REQUEST.*names.{0,3} must be string\[\]/,
    );
    assert.match(await exchange(sock, 'x'.repeat(300 * 1024)), /E_TOO_LARGE/);
    const list = await e.json<{ name: string }[]>('layer', 'list');
    assert.ok(list.some((l) => l.name === 'good'));
  });

  it('refuses an archive that is not a layer, and leaves the store unchanged', async () => {
    const junk = path.join(e.dir, 'junk.tar.gz');
    fs.writeFileSync(junk, 'definitely not gzip');
    const r = await e.cli('layer', 'import', junk);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_ARCHIVE: .*junk\.tar\.gz: not a readable layer archive/);
    assert.deepStrictEqual(
      fs
        .readdirSync(path.join(e.home, 'layers'))
        .filter((n) => !n.startsWith('.'))
        .sort(),
      ['good', 'victim'],
    );
  });

  it('refuses views that would cover the layer store or nest in themselves', async () => {
    const r = await e.cli('view', 'add', e.dir);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_VIEW_INVALID: an in-place view .* would cover the layer store/);
    const r2 = await e.cli('view', 'add', e.base, '--at', path.join(e.base, 'inner'));
    assert.match(r2.stderr, /E_VIEW_INVALID: mountpoint .* overlap/);
    const r3 = await e.cli('view', 'rm', '/nonexistent');
    assert.match(r3.stderr, /E_VIEW_UNKNOWN/);
  });

  it('gives usage errors exit status 2', async () => {
    const r = await e.cli('layer', 'map', 'good');
    assert.strictEqual(r.code, 2);
    assert.match(r.stderr, /expected layer map NAME ORIGINAL DESTINATION/);
  });
});

describe('control socket: permissions and subscriptions', function () {
  let e: Env;
  before(async () => {
    e = makeEnv();
    writeTree(path.join(e.dir, 'src'), { f: 'layer\n' });
    await e.ok('layer', 'create', 'sub', '--from', path.join(e.dir, 'src'));
  });
  after(async () => e.cleanup());

  it('keeps the socket 0600 in a 0700 directory', () => {
    const sock = socketPath(e.home);
    assert.strictEqual(fs.statSync(sock).mode & 0o777, 0o600);
    assert.strictEqual(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700);
  });

  it('pushes a state event to subscribers when the CLI changes something', async () => {
    const s = net.connect(socketPath(e.home));
    s.setEncoding('utf8');
    const lines: string[] = [];
    let buf = '';
    s.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    s.write('{"id":1,"method":"subscribe","params":{}}\n');
    const until = async (pred: () => boolean) => {
      const t0 = Date.now();
      while (!pred()) {
        if (Date.now() - t0 > 10000) throw new Error(`no such message; got ${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => lines.some((l) => l.startsWith('{"id":1,"ok":true')));
    await e.ok('activate', 'sub');
    await until(() => lines.some((l) => l.includes('"event":"state"') && l.includes('"reason":"activate"')));
    const ev = JSON.parse(lines.find((l) => l.includes('"reason":"activate"'))!);
    assert.deepStrictEqual(ev.status.active, ['sub']);
    s.destroy();
  });
});

describe('agent: never reads a client path inside its own views', function () {
  let e: Env;
  before(async () => {
    e = makeEnv();
    writeTree(e.base, { 'layer.tar.gz': 'inside the view' });
    await e.ok('view', 'add', e.base);
  });
  after(async () => e.cleanup());

  it('refuses at once, instead of waiting on its own mount', async () => {
    const t0 = Date.now();
    const r = await e.cli('layer', 'import', path.join(e.base, 'layer.tar.gz'));
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_BAD_REQUEST: layer archive .* is inside the view at .*, which this agent serves/);
    assert.ok(Date.now() - t0 < 10000, 'answered without a FUSE timeout');
  });

  it('keeps one agent per home even when clients differ in TMPDIR', async () => {
    const { pid } = await e.json<{ pid: number }>('status');
    const other = await new Promise<{ code: number; out: string }>((res) => {
      const tmp = fs.mkdtempSync(path.join(e.dir, 'tmp-'));
      execFile(process.execPath, [CLI, 'status', '--json'], { env: { ...e.env, TMPDIR: tmp } }, (err, stdout, stderr) =>
        res({ code: err ? 1 : 0, out: String(stdout) + String(stderr) }),
      );
    });
    assert.strictEqual(other.code, 0, other.out);
    assert.strictEqual(JSON.parse(other.out).pid, pid, 'the same agent answered');
  });
});
