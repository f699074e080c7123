/**
 * Differential check: seeded random file operations applied through a Strata view (with a layer
 * active, so copy-up, whiteouts and merged listings are all exercised) and to a plain directory
 * holding the same starting tree must give identical results and identical trees. The second
 * half (diffmeta.py) compares metadata too: nlink, modes under several umasks, owners (also as an
 * ordinary user against a root agent), xattrs, FIFOs, byte names and 255-byte names.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { Env, ROOT, isRoot, makeEnv, writeTree } from './helpers';
import { mulberry32 } from '../prng';

const OPS = Number(process.env.STRATA_DIFF_OPS ?? 10000);
const SEED = Number(process.env.STRATA_DIFF_SEED ?? 20261125);

type Outcome = string;

function attempt(fn: () => unknown): Outcome {
  try {
    const v = fn();
    return 'ok:' + (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  } catch (e) {
    return 'err:' + ((e as NodeJS.ErrnoException).code ?? String(e));
  }
}

/**
 * mv semantics: rename, or when the file system says EXDEV (as overlayfs does for merged
 * directories), check what rename(2) would refuse, then copy and delete.
 */
function move(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    const src = fs.lstatSync(from);
    const dst = (() => {
      try {
        return fs.lstatSync(to);
      } catch {
        return null;
      }
    })();
    const err = (code: string) => Object.assign(new Error(code), { code });
    if (dst) {
      if (dst.isDirectory() && !src.isDirectory()) throw err('EISDIR');
      if (!dst.isDirectory() && src.isDirectory()) throw err('ENOTDIR');
      if (dst.isDirectory() && fs.readdirSync(to).length) throw err('ENOTEMPTY');
      fs.rmSync(to, { recursive: true });
    }
    fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    fs.rmSync(from, { recursive: true });
  }
}

function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const names = fs.readdirSync(path.join(root, rel)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`L ${r} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`D ${r} ${mode}`);
        walk(r);
      } else out.push(`F ${r} ${mode} ${st.size} ${fs.readFileSync(p, 'utf8')}`);
    }
  };
  walk('');
  return out;
}

describe(`differential: ${OPS} random operations, view vs plain directory`, function () {
  this.timeout(20 * 60 * 1000);
  let e: Env;
  let ref: string;
  before(async () => {
    e = makeEnv('strata-diff-');
    ref = path.join(e.dir, 'ref');
    writeTree(e.base, { 'a/f1': 'base a f1\n', 'a/b/f2': 'base f2\n', 'c/f3': 'base f3\n', top: 'top\n' }, 0o644);
    const src = path.join(e.dir, 'src');
    writeTree(src, { 'a/f1': 'layer a f1 longer\n', 'a/l1': 'layer l1\n', 'a/b/': '', 'd/f4': 'layer f4\n' }, 0o644);
    await e.ok('layer', 'create', 'lay', '--from', src);
    await e.ok('layer', 'unmap', 'lay', '/');
    await e.ok('layer', 'map', 'lay', '/a', 'a');
    await e.ok('layer', 'map', 'lay', '/d', 'd');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('activate', 'lay');
    fs.cpSync(e.mnt, ref, { recursive: true, verbatimSymlinks: true });
  });
  after(async () => e.cleanup());

  it('gives identical results and trees', function () {
    assert.deepStrictEqual(snapshot(e.mnt), snapshot(ref), 'starting trees differ');
    const rnd = mulberry32(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const names = ['a', 'b', 'c', 'd', 'f1', 'f2', 'l1', 'x', 'y'];
    const randPath = (): string => {
      const depth = 1 + Math.floor(rnd() * 3);
      return Array.from({ length: depth }, () => pick(names)).join('/');
    };
    const ops: Record<string, (root: string, p: string, q: string, n: number) => unknown> = {
      write: (r, p, _q, n) => fs.writeFileSync(path.join(r, p), `w${n}\n`.repeat(1 + (n % 7))),
      append: (r, p, _q, n) => fs.appendFileSync(path.join(r, p), `a${n}\n`),
      read: (r, p) => fs.readFileSync(path.join(r, p), 'utf8'),
      truncate: (r, p, _q, n) => fs.truncateSync(path.join(r, p), n % 5),
      unlink: (r, p) => fs.unlinkSync(path.join(r, p)),
      mkdir: (r, p) => fs.mkdirSync(path.join(r, p)),
      rmdir: (r, p) => fs.rmdirSync(path.join(r, p)),
      rename: (r, p, q) => move(path.join(r, p), path.join(r, q)),
      symlink: (r, p, q) => fs.symlinkSync(q, path.join(r, p)),
      readlink: (r, p) => fs.readlinkSync(path.join(r, p)),
      stat: (r, p) => {
        const s = fs.lstatSync(path.join(r, p));
        return [s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : 'f', s.isDirectory() ? 0 : s.size, (s.mode & 0o7777).toString(8)];
      },
      readdir: (r, p) => fs.readdirSync(path.join(r, p)).sort(),
      chmod: (r, p, _q, n) => fs.chmodSync(path.join(r, p), n % 2 ? 0o600 : 0o755),
    };
    const weights: [string, number][] = [
      ['write', 14],
      ['append', 8],
      ['read', 14],
      ['truncate', 4],
      ['unlink', 8],
      ['mkdir', 10],
      ['rmdir', 6],
      ['rename', 8],
      ['symlink', 3],
      ['readlink', 2],
      ['stat', 12],
      ['readdir', 8],
      ['chmod', 3],
    ];
    const total = weights.reduce((s, [, w]) => s + w, 0);
    const chooseOp = (): string => {
      let x = rnd() * total;
      for (const [name, w] of weights) if ((x -= w) < 0) return name;
      return 'read';
    };
    let mismatches = 0;
    for (let n = 0; n < OPS; n++) {
      const op = chooseOp();
      const p = randPath();
      const q = randPath();
      const got = attempt(() => ops[op](e.mnt, p, q, n));
      const want = attempt(() => ops[op](ref, p, q, n));
      if (got !== want) {
        mismatches++;
        assert.fail(`op ${n}: ${op} ${p} ${q}: view gave ${got}, plain directory gave ${want}`);
      }
      if (n % 1000 === 999) assert.deepStrictEqual(snapshot(e.mnt), snapshot(ref), `trees differ after op ${n}`);
    }
    assert.strictEqual(mismatches, 0);
    assert.deepStrictEqual(snapshot(e.mnt), snapshot(ref));
    // The base outside the mappings was changed only through the view, and the layer's files never.
    assert.strictEqual(fs.readFileSync(path.join(e.home, 'layers/lay/files/a/f1'), 'utf8'), 'layer a f1 longer\n');
  });
});

const META_OPS = Number(process.env.STRATA_DIFF_META_OPS ?? 5000);
const USER = 'strata-test';
// Debian's interpreter: readable by the ordinary user too (a root-only pyenv would not be).
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const DIFFMETA = fs.readFileSync(path.join(ROOT, 'test', 'integration', 'diffmeta.py'), 'utf8');

function diffmeta(args: string[], as?: { uid: number; gid: number }): string {
  const r = spawnSync(PYTHON, ['-c', DIFFMETA, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 15 * 60 * 1000, ...as });
  if (r.status !== 0) throw new Error(`diffmeta ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

describe(`differential: ${META_OPS} random operations on metadata, view vs plain directory`, function () {
  this.timeout(30 * 60 * 1000);
  let e: Env;
  let ref: string;
  let user = { uid: 0, gid: 0 };
  const sameTrees = (when: string): void => {
    const view = diffmeta(['snapshot', e.mnt]).split('\n');
    const plain = diffmeta(['snapshot', ref]).split('\n');
    assert.deepStrictEqual(view, plain, `trees differ ${when}`);
  };
  const run = (seed: number, as?: { uid: number; gid: number }): void => {
    const r = JSON.parse(diffmeta(['run', e.mnt, ref, String(seed), String(META_OPS)], as)) as {
      ops: number;
      done: Record<string, number>;
      mismatch: string | null;
    };
    assert.strictEqual(r.mismatch, null);
    assert.strictEqual(r.ops, META_OPS);
    // Not a run that only met errors: every kind of change succeeded somewhere.
    const kinds = [
      'write',
      'create',
      'mkdir',
      'unlink',
      'rename',
      'link',
      'symlink',
      'mkfifo',
      'chmod',
      'chown',
      'setxattr',
      'removexattr',
    ];
    assert.deepStrictEqual(
      kinds.filter((k) => !r.done[k]),
      [],
      `operations that never succeeded (${JSON.stringify(r.done)})`,
    );
  };

  before(async function () {
    if (isRoot()) {
      if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', USER]);
      user = {
        uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' })),
      };
    } else {
      user = { uid: process.getuid!(), gid: process.getgid!() };
    }
    e = makeEnv('strata-diffmeta-');
    ref = path.join(e.dir, 'ref');
    const src = path.join(e.dir, 'src');
    diffmeta(['setup', 'base', e.base, String(user.uid), String(user.gid)]);
    diffmeta(['setup', 'layer', src, String(user.uid), String(user.gid)]);
    await e.ok('layer', 'create', 'lay', '--from', src);
    await e.ok('layer', 'unmap', 'lay', '/');
    await e.ok('layer', 'map', 'lay', '/a', 'a');
    await e.ok('layer', 'map', 'lay', '/d', 'd');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('activate', 'lay');
    // The same tree as a plain directory: modes, owners, xattrs, hard links and the FIFO kept.
    execFileSync('cp', ['-a', e.mnt, ref]);
    sameTrees('at the start');
  });
  after(async () => e.cleanup());

  it('gives identical results and trees for an ordinary user against a root agent', function () {
    if (!isRoot()) this.skip();
    run(SEED + 1, user);
    sameTrees(`after ${META_OPS} operations as ${USER}`);
  });

  it("gives identical results and trees for the agent's own user", function () {
    run(SEED + 2);
    sameTrees(`after ${META_OPS} more operations as uid ${process.getuid?.()}`);
  });
});
