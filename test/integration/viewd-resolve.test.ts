/**
 * Differential check: for seeded random rule sets, writable marks and paths, strata-viewd's
 * resolution (its `resolve` answer) equals the TypeScript Resolver's (resolve + sourcesFor +
 * isMappingAncestor), byte for byte.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Resolver, RuleLayer, WritableMarks, sourcesFor } from '../../shared/resolver';
import { pctEncode } from '../../daemon/fuse/ruletable';
import { mulberry32 } from '../prng';
import { VIEWD, Viewd, detach, layerDirs, startViewd, table } from './viewd-helpers';

const SEEDS = 120;
const PATHS_PER_SET = 40;
// Segments share string prefixes ('a'/'ab'/'a.b') and need encoding (' ', 'ü', '%').
const VIEW_SEGS = ['a', 'b', 'ab', 'a.b', 'opt', 'a b', 'ü', '%'];
const REL_SEGS = ['x', 'y', 'xy', 'a', 'ü'];
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'e+f', 'Zeta', 'al'];

class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  viewPath(min: number, max: number): string {
    const d = min + this.int(max - min + 1);
    return '/' + Array.from({ length: d }, () => this.pick(VIEW_SEGS)).join('/');
  }
  relPath(max: number): string {
    return Array.from({ length: this.int(max + 1) }, () => this.pick(REL_SEGS)).join('/');
  }
}

function randomLayers(g: Gen): RuleLayer[] {
  const names = [...NAMES].sort(() => g.int(3) - 1).slice(0, g.int(5));
  return [...new Set(names)].map((name) => ({
    name,
    priority: g.pick([-1, 0, 0, 1, 2]),
    mappings: [...new Set(Array.from({ length: g.int(4) }, () => g.viewPath(0, 3)))].map((original) => ({
      original,
      destination: g.relPath(2),
    })),
    excludes: [...new Set(Array.from({ length: g.int(3) }, () => g.viewPath(1, 3)))],
    deletes: g.int(3) === 0 ? [...new Set(Array.from({ length: 1 + g.int(2) }, () => g.viewPath(1, 3)))] : [],
  }));
}

function randomMarks(g: Gen): WritableMarks {
  return {
    whiteouts: new Set(Array.from({ length: g.int(4) }, () => g.relPath(3)).filter((r) => r !== '')),
    opaque: new Set(Array.from({ length: g.int(3) }, () => g.relPath(2))),
  };
}

function writeMarks(meta: string, m: WritableMarks): void {
  fs.mkdirSync(meta, { recursive: true });
  const enc = (r: string) => (r === '' ? '.' : pctEncode(r));
  const lines = [...[...m.whiteouts].map((w) => `+w ${enc(w)}`), ...[...m.opaque].map((o) => `+o ${enc(o)}`)];
  fs.writeFileSync(path.join(meta, 'marks'), lines.map((l) => l + '\n').join(''));
}

function below(p: string, tail: string): string {
  if (tail === '/') return p;
  return p === '/' ? tail : p + tail;
}

function expected(r: Resolver, p: string, marks: (l: string) => WritableMarks): string {
  const res = r.resolve(p);
  let s = `hidden=${res.hidden ? 1 : 0} ancestor=${r.isMappingAncestor(p) ? 1 : 0} owner=${res.owner === null ? '-' : pctEncode(res.owner)}`;
  const sources = res.hidden ? [] : sourcesFor(res, p, marks);
  for (const x of sources) {
    s += x.kind === 'base' ? ` b:${pctEncode(x.path)}` : ` ${x.kind === 'writable' ? 'w' : 'f'}:${pctEncode(x.layer)}:${pctEncode(x.rel)}`;
  }
  return s;
}

describe('viewd: resolution equals the TypeScript Resolver (differential)', function () {
  let dir: string;
  let v: Viewd;

  before(async function () {
    if (!fs.existsSync(VIEWD)) throw new Error(`${VIEWD} is missing: run npx node-gyp rebuild`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-viewd-diff-'));
    fs.mkdirSync(path.join(dir, 'base'));
    fs.mkdirSync(path.join(dir, 'mnt'));
    v = await startViewd({ mnt: path.join(dir, 'mnt'), base: path.join(dir, 'base'), sock: path.join(dir, 'ctl.sock') });
  });

  after(async function () {
    if (v) await v.stop();
    detach(path.join(dir, 'mnt'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`agrees on ${SEEDS} random rule sets × ${PATHS_PER_SET} paths`, async function () {
    let compared = 0;
    const seen = { hidden: 0, ancestor: 0, endsAtWritable: 0, layered: 0, encoded: 0 };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const g = new Gen(seed);
      const layers = randomLayers(g);
      const resolver = new Resolver(layers);
      // Fresh folders per set: the server loads a layer's marks when it first sees its sublayer.
      const root = path.join(dir, `set-${seed}`);
      const marks = new Map<string, WritableMarks>();
      for (const l of layers) {
        const m = randomMarks(g);
        marks.set(l.name, m);
        writeMarks(layerDirs(root, l.name).meta, m);
      }
      await v.ctl.rules(table(root, layers, seed));
      const candidates = ['/', ...layers.flatMap((l) => [...l.mappings.map((m) => m.original), ...l.excludes, ...l.deletes])];
      for (let i = 0; i < PATHS_PER_SET; i++) {
        const p =
          i < candidates.length && g.int(2) === 0
            ? candidates[i]
            : g.int(2)
              ? below(g.pick(candidates), g.viewPath(0, 2))
              : g.viewPath(0, 4);
        const want = expected(resolver, p, (l) => marks.get(l)!);
        const got = await v.ctl.resolve(p);
        assert.strictEqual(got, want, `seed ${seed}, path ${JSON.stringify(p)}, layers ${JSON.stringify(layers)}`);
        compared++;
        if (want.startsWith('hidden=1')) seen.hidden++;
        if (want.includes('ancestor=1')) seen.ancestor++;
        if (/ w:[^ ]*$/.test(want)) seen.endsAtWritable++;
        if ((want.match(/ w:/g) ?? []).length > 1) seen.layered++;
        if (/%/.test(want)) seen.encoded++;
      }
    }
    assert.strictEqual(compared, SEEDS * PATHS_PER_SET);
    // The generator reaches every kind of answer (deletes, mapping ancestors, whiteouts or opaque
    // folders ending a chain, several layers, names that need encoding).
    for (const [k, n] of Object.entries(seen)) assert.ok(n > 0, `no case of ${k}: ${JSON.stringify(seen)}`);
  });
});
