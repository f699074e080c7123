/**
 * Unit tests for the small team pieces: Backoff, TokenBucket, the layer digest (temp dirs) and the
 * team file loader.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backoff } from '../../shared/backoff';
import { TokenBucket } from '../../daemon/team/ratelimit';
import { digestLayerDir } from '../../daemon/team/digest';
import { findTeamFile, loadTeamFile } from '../../daemon/team/teamfile';
import { mulberry32 as prng } from '../prng';

describe('team: Backoff', () => {
  it('stays within [0, min(cap, base * 2^n)] and counts attempts', () => {
    const rnd = prng(7);
    const b = new Backoff({ baseMs: 100, capMs: 5000, random: rnd });
    for (let n = 0; n < 40; n++) {
      assert.equal(b.attempt, n);
      const d = b.next();
      assert.ok(d >= 0 && d <= Math.min(5000, 100 * 2 ** n), `attempt ${n}: ${d}`);
    }
  });

  it('reaches the exponential bound with random() near 1, and stays capped', () => {
    const b = new Backoff({ baseMs: 250, capMs: 10_000, random: () => 0.999999999 });
    const got = Array.from({ length: 10 }, () => b.next());
    assert.deepEqual(got, [249, 499, 999, 1999, 3999, 7999, 9999, 9999, 9999, 9999]);
    for (let i = 0; i < 2000; i++) assert.ok(b.next() <= 10_000);
    assert.equal(b.attempt, 2010);
  });

  it('is full jitter: random() scales the whole bound', () => {
    const b = new Backoff({ random: () => 0.5 });
    assert.deepEqual([b.next(), b.next(), b.next()], [125, 250, 500]);
    assert.equal(new Backoff({ random: () => 0 }).next(), 0);
  });

  it('reset starts over', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999 });
    b.next();
    b.next();
    b.next();
    assert.equal(b.attempt, 3);
    b.reset();
    assert.equal(b.attempt, 0);
    assert.ok(b.next() < 100);
  });

  it('uses the defaults 250 / 10 000 and refuses nonsense', () => {
    const b = new Backoff({ random: () => 0.9999999 });
    assert.equal(b.next(), 249);
    for (let i = 0; i < 10; i++) b.next();
    assert.equal(b.next(), 9999);
    assert.throws(() => new Backoff({ baseMs: 0 }), /baseMs/);
    assert.throws(() => new Backoff({ baseMs: 100, capMs: 50 }), /capMs/);
  });
});

describe('team: TokenBucket', () => {
  it('allows a burst, then refuses', () => {
    const b = new TokenBucket(10, 3, () => 0);
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  });

  it('refills at the rate, up to the burst', () => {
    let t = 0;
    const b = new TokenBucket(10, 5, () => t); // one token per 100 ms
    for (let i = 0; i < 5; i++) b.take();
    assert.equal(b.take(), false);
    t = 99;
    assert.equal(b.take(), false);
    t = 100;
    assert.equal(b.take(), true);
    assert.equal(b.take(), false);
    t = 100_000;
    assert.equal(b.available(), 5, 'capped at the burst');
    assert.equal(b.take(5), true);
    assert.equal(b.take(), false);
  });

  it('takes n at once or nothing', () => {
    let t = 0;
    const b = new TokenBucket(1, 4, () => t);
    assert.equal(b.take(3), true);
    assert.equal(b.take(2), false);
    assert.equal(b.take(1), true, 'the failed take(2) took nothing');
    t = 2000;
    assert.equal(b.take(2), true);
  });

  it('takes a one-time credit beyond the burst, and refills only up to the burst', () => {
    let t = 0;
    const b = new TokenBucket(10, 5, () => t);
    b.credit(100);
    assert.equal(b.available(), 105);
    t = 10_000;
    assert.equal(b.available(), 105, 'no refill above the burst');
    assert.ok(b.take(104));
    t = 20_000;
    assert.equal(b.available(), 5);
  });

  it('does not stack credits: at most one credit above the burst', () => {
    const b = new TokenBucket(10, 5, () => 0);
    b.credit(100);
    b.credit(100);
    assert.equal(b.available(), 105);
    assert.ok(b.take(103));
    b.credit(100);
    assert.equal(b.available(), 102, 'spent tokens are credited again');
  });

  it('does not refill when the clock goes backwards', () => {
    let t = 10_000;
    const b = new TokenBucket(10, 2, () => t);
    b.take(2);
    t = 0;
    assert.equal(b.take(), false);
    t = 100;
    assert.equal(b.take(), true, 'refills from the new reading');
  });

  it('refuses nonsense', () => {
    assert.throws(() => new TokenBucket(0, 1), /ratePerSec/);
    assert.throws(() => new TokenBucket(1, 0), /burst/);
  });
});

describe('team: digestLayerDir', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-digest-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A layer; `reverse` creates entries in the opposite order (different inodes and readdir order). */
  function makeLayer(name: string, reverse = false): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(path.join(dir, 'writable', 'files'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'writable', 'files', 'junk'), String(Math.random()));
    fs.writeFileSync(
      path.join(dir, 'layer.json'),
      reverse
        ? '{"name":"n20","format":2,"mappings":[{"destination":"node","original":"/opt/node"}]}'
        : JSON.stringify({ format: 2, name: 'n20', mappings: [{ original: '/opt/node', destination: 'node' }] }, null, 2),
    );
    const steps: (() => void)[] = [
      () => fs.mkdirSync(path.join(dir, 'files', 'node', 'bin'), { recursive: true }),
      () => fs.writeFileSync(path.join(dir, 'files', 'node', 'bin', 'node'), 'ELF...binary'),
      () => fs.chmodSync(path.join(dir, 'files', 'node', 'bin', 'node'), 0o755),
      () => fs.writeFileSync(path.join(dir, 'files', 'node', 'README'), 'hello'),
      () => fs.writeFileSync(path.join(dir, 'files', 'node', 'a'), 'first'),
      () => fs.writeFileSync(path.join(dir, 'files', 'node', 'z'), 'last'),
      () => fs.symlinkSync('bin/node', path.join(dir, 'files', 'node', 'link')),
      () => fs.mkdirSync(path.join(dir, 'files', 'empty')),
    ];
    // keep dependencies: directories first, then the rest in either order
    const [mk, ...rest] = steps;
    mk();
    const node = rest.slice(0, 2);
    const others = rest.slice(2);
    node.forEach((s) => s());
    (reverse ? others.reverse() : others).forEach((s) => s());
    return dir;
  }

  it('is "sha256:<hex>" and stable across copies with different mtimes, key order and writable content', async () => {
    const a = makeLayer('a');
    const b = makeLayer('b', true);
    const old = new Date('2001-01-01T00:00:00Z');
    fs.utimesSync(path.join(b, 'files', 'node', 'README'), old, old);
    fs.utimesSync(path.join(b, 'files', 'node'), old, old);
    const da = await digestLayerDir(a);
    assert.match(da, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await digestLayerDir(b), da);
    assert.equal(await digestLayerDir(a), da, 'repeatable');
  });

  it("changes when a file's content changes", async () => {
    const a = makeLayer('a');
    const before = await digestLayerDir(a);
    fs.writeFileSync(path.join(a, 'files', 'node', 'README'), 'hellO');
    assert.notEqual(await digestLayerDir(a), before);
  });

  it('changes when a mode changes', async () => {
    const a = makeLayer('a');
    const before = await digestLayerDir(a);
    fs.chmodSync(path.join(a, 'files', 'node', 'bin', 'node'), 0o744);
    assert.notEqual(await digestLayerDir(a), before);
    fs.chmodSync(path.join(a, 'files', 'node', 'bin', 'node'), 0o755);
    assert.equal(await digestLayerDir(a), before);
    fs.chmodSync(path.join(a, 'files', 'empty'), 0o700);
    assert.notEqual(await digestLayerDir(a), before, 'directory modes count too');
  });

  it('changes with a renamed file, a symlink target, an added empty dir, or layer.json', async () => {
    const a = makeLayer('a');
    const before = await digestLayerDir(a);
    const change = async (mutate: () => void, undo: () => void, what: string): Promise<void> => {
      mutate();
      assert.notEqual(await digestLayerDir(a), before, what);
      undo();
      assert.equal(await digestLayerDir(a), before, `${what} undone`);
    };
    const f = (...p: string[]): string => path.join(a, 'files', ...p);
    await change(
      () => fs.renameSync(f('node', 'z'), f('node', 'y')),
      () => fs.renameSync(f('node', 'y'), f('node', 'z')),
      'rename',
    );
    await change(
      () => {
        fs.unlinkSync(f('node', 'link'));
        fs.symlinkSync('bin/other', f('node', 'link'));
      },
      () => {
        fs.unlinkSync(f('node', 'link'));
        fs.symlinkSync('bin/node', f('node', 'link'));
      },
      'symlink target',
    );
    await change(
      () => fs.mkdirSync(f('new')),
      () => fs.rmdirSync(f('new')),
      'empty dir',
    );
    await change(
      () => {
        fs.unlinkSync(f('node', 'a'));
        fs.symlinkSync('first', f('node', 'a'));
      },
      () => {
        fs.unlinkSync(f('node', 'a'));
        fs.writeFileSync(f('node', 'a'), 'first');
      },
      'file → symlink with the content as target',
    );
    const spec = fs.readFileSync(path.join(a, 'layer.json'), 'utf8');
    await change(
      () => fs.writeFileSync(path.join(a, 'layer.json'), spec.replace('n20', 'n21')),
      () => fs.writeFileSync(path.join(a, 'layer.json'), spec),
      'layer.json',
    );
  });

  it('does not let content move across a file boundary unnoticed', async () => {
    const a = makeLayer('a');
    const before = await digestLayerDir(a);
    fs.writeFileSync(path.join(a, 'files', 'node', 'a'), 'firstl');
    fs.writeFileSync(path.join(a, 'files', 'node', 'z'), 'ast');
    assert.notEqual(await digestLayerDir(a), before);
  });

  it('ignores the writable sublayer', async () => {
    const a = makeLayer('a');
    const before = await digestLayerDir(a);
    fs.writeFileSync(path.join(a, 'writable', 'files', 'more'), 'x');
    assert.equal(await digestLayerDir(a), before);
  });

  it('fails clearly without layer.json, with bad JSON, without files/, or on a fifo', async () => {
    const a = makeLayer('a');
    const spec = path.join(a, 'layer.json');
    fs.writeFileSync(spec, '{nope');
    await assert.rejects(digestLayerDir(a), /layer.json is not valid JSON/);
    fs.unlinkSync(spec);
    await assert.rejects(digestLayerDir(a), /layer.json/);
    fs.writeFileSync(spec, '{}');
    fs.rmSync(path.join(a, 'files'), { recursive: true });
    await assert.rejects(digestLayerDir(a), /cannot digest layer/);
    fs.mkdirSync(path.join(a, 'files'));
    await digestLayerDir(a);
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(a, 'files', 'pipe')]);
    await assert.rejects(digestLayerDir(a), /files\/pipe is not a file, directory or symlink/);
  });
});

describe('team: team file', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-teamfile-')));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const D = `sha256:${'a'.repeat(64)}`;
  const good = {
    format: 1,
    team: 'acme',
    relays: ['wss://relay.example/team'],
    layers: { node18: { digest: D }, node20: { digest: D }, py: { digest: D } },
    defaults: ['node18', 'py'],
    slots: { node: ['node18', 'node20'] },
  };
  const write = (v: unknown, name = 'strata.team.json'): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
    return f;
  };

  it('loads a valid file', () => {
    assert.deepEqual(loadTeamFile(write(good)), good);
  });

  it('lists every problem, each with the file and field', () => {
    const f = write({ format: 2, team: 'has space', relays: ['http://x'], layers: { a: { digest: 'md5:1' } }, defaults: 'a', slots: [] });
    assert.throws(
      () => loadTeamFile(f),
      (e: Error) => {
        for (const field of ['format', 'team', 'relays', 'layers', 'defaults', 'slots'])
          assert.ok(e.message.includes(`${f}: ${field}:`), `${field} in ${e.message}`);
        assert.match(e.message, /has 6 problems/);
        return true;
      },
    );
  });

  it('reports references to unknown layers', () => {
    const f = write({ ...good, defaults: ['node18', 'ghost'], slots: { node: ['node18', 'phantom'] } });
    assert.throws(
      () => loadTeamFile(f),
      (e: Error) => /defaults: "ghost" is not a team layer/.test(e.message) && /slots.node: "phantom" is not a team layer/.test(e.message),
    );
  });

  it('refuses two defaults in one slot and a layer in two slots', () => {
    const f = write({ ...good, defaults: ['node18', 'node20'], slots: { node: ['node18', 'node20'], other: ['node20', 'py'] } });
    assert.throws(
      () => loadTeamFile(f),
      (e: Error) => {
        assert.match(e.message, /defaults: "node18" and "node20" are all in slot node/);
        assert.match(e.message, /slots.other: "node20" is already in slot node/);
        return true;
      },
    );
  });

  it('reports unreadable and non-JSON files with the path', () => {
    assert.throws(() => loadTeamFile(path.join(tmp, 'missing.json')), /cannot read team file .*missing.json/);
    assert.throws(() => loadTeamFile(write('{"format": 1,', 'broken.json')), /broken.json is not valid JSON/);
  });

  it('findTeamFile walks up from a nested folder, and returns null when there is none', () => {
    const nested = path.join(tmp, 'repo', 'src', 'deep');
    fs.mkdirSync(nested, { recursive: true });
    assert.equal(findTeamFile(nested), null);
    const f = path.join(tmp, 'repo', 'strata.team.json');
    fs.writeFileSync(f, '{}');
    assert.equal(findTeamFile(nested), f);
    assert.equal(findTeamFile(path.join(tmp, 'repo')), f);
    fs.mkdirSync(path.join(tmp, 'repo', 'src', 'strata.team.json'));
    assert.equal(findTeamFile(nested), f, 'a directory of that name does not count');
  });
});
