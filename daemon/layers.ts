/**
 * Layer commands: create, remove, edit rules, reset, export and import. Edits are validated and
 * saved through the store, then applied to the views when the layer is active.
 */
import * as fsp from 'fs/promises';
import * as path from 'path';
import { LayerDetail, LayerInfo, LayerSpec, Mapping, Problem, ViewChange } from '../protocol';
import { StrataError } from '../shared/errors';
import { cycleThrough } from '../shared/requires';
import { normalizeLayerPath, normalizeViewPath, PathError } from '../shared/resolver';
import { LayerCatalog, rulePaths } from './catalog';
import { checkLayerSpec, destRel } from './layerspec';
import { Queue } from './queue';
import { LayerStore, Progress, Staged } from './store';
import { ImportLimits } from './archive';
import { viewHolding } from './outside';
import { LocalSwitch } from './switch';
import { Views } from './fuse/views';
import { digestLayerDir } from './team/digest';

/** How old a writable size in a layer list may be. */
const LIST_SIZE_AGE_MS = 10_000;

export interface LayersOptions {
  queue: Queue;
  store: LayerStore;
  catalog: LayerCatalog;
  views: Views;
  switch: LocalSwitch;
  emit: (reason: string, change?: ViewChange) => void;
  importLimits: ImportLimits;
}

export class Layers {
  /** Writable sizes measured for list(), by layer: a walk of the writable sublayer each time. */
  private readonly sizes = new Map<string, { bytes: number; at: number }>();
  private readonly measuring = new Map<string, Promise<number>>();

  constructor(private readonly o: LayersOptions) {}

  /** maxAgeMs: how old a measured writable size may be (0: walked now). */
  async info(spec: LayerSpec, maxAgeMs = 0): Promise<LayerInfo> {
    return { ...spec, active: this.o.switch.active().includes(spec.name), writableBytes: await this.writableBytes(spec.name, maxAgeMs) };
  }

  /** Every layer, with writable sizes up to 10 s old: the extension lists layers after every state
   *  event, and a writable sublayer an `npm install` wrote into holds tens of thousands of files. */
  list(): Promise<LayerInfo[]> {
    return Promise.all(this.o.catalog.all().map((s) => this.info(s, LIST_SIZE_AGE_MS)));
  }

  private writableBytes(name: string, maxAgeMs: number): Promise<number> {
    const known = this.sizes.get(name);
    if (maxAgeMs > 0 && known && Date.now() - known.at <= maxAgeMs) return Promise.resolve(known.bytes);
    const running = this.measuring.get(name);
    if (running && maxAgeMs > 0) return running;
    const at = Date.now();
    const walk = this.o.store.writableBytes(name).then((bytes) => {
      const cur = this.sizes.get(name);
      if (!cur || cur.at <= at) this.sizes.set(name, { bytes, at }); // a walk begun before a reset is old
      return bytes;
    });
    const done = () => {
      if (this.measuring.get(name) === walk) this.measuring.delete(name);
    };
    walk.then(done, done);
    this.measuring.set(name, walk);
    return walk;
  }

  /** With the content digest a team file pins (layer.json and the read-only files; computed each time). */
  async show(name: string): Promise<LayerDetail> {
    await this.o.catalog.reload();
    const info = await this.info(await this.o.catalog.requireValid(name));
    return { ...info, digest: await digestLayerDir(this.o.store.dir(name)) };
  }

  /** The copy runs outside the queue, so switches go on meanwhile; only installing it waits. */
  async create(
    p: { name: string; from: string; priority?: number; version?: string; description?: string; mappings?: Mapping[]; requires?: string[] },
    progress?: Progress,
  ): Promise<LayerInfo> {
    // Refused before the capture, which may take long: mappings worded as `layer map` words them.
    const mappings = p.mappings?.map((m) => mappingArgs(m.original, m.destination));
    this.refuseCycle({ name: p.name, requires: p.requires }, `${p.name}/layer.json`);
    const { real, view } = await viewHolding(this.o.views.list(), p.from);
    if (view) {
      throw new StrataError(
        'E_LAYER_INVALID',
        `--from ${path.resolve(p.from)} is inside the view at ${view.mountpoint}`,
        'Capture from a folder outside any Strata view.',
      );
    }
    return this.install(await this.o.store.stageCreate(p.name, real, { ...p, mappings }, progress), 'layer-created', progress);
  }

  remove(name: string): Promise<{ removed: string }> {
    return this.o.queue.run(async () => {
      if (this.o.switch.isActive(name)) {
        throw new StrataError('E_LAYER_ACTIVE', `layer "${name}" is active`, `Deactivate it first with "strata deactivate ${name}".`);
      }
      await this.o.store.remove(name);
      await this.o.catalog.reload();
      this.o.emit('layer-removed');
      return { removed: name };
    });
  }

  map(name: string, original: string, destination: string): Promise<LayerInfo> {
    let m: Mapping;
    try {
      m = mappingArgs(original, destination);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.edit(name, (s) => {
      s.mappings = s.mappings.filter((x) => x.original !== m.original);
      s.mappings.push(m);
      return s;
    });
  }

  unmap(name: string, original: string): Promise<LayerInfo> {
    const o = viewPathArg(original, 'ORIGINAL');
    return this.edit(name, (s) => {
      if (!s.mappings.some((m) => m.original === o)) {
        throw new StrataError(
          'E_MAPPING_UNKNOWN',
          `layer "${name}" has no mapping for ${o}`,
          `See its mappings with "strata layer show ${name}".`,
        );
      }
      s.mappings = s.mappings.filter((m) => m.original !== o);
      return s;
    });
  }

  addExclude(name: string, p: string): Promise<LayerInfo> {
    const v = viewPathArg(p, 'PATH');
    return this.edit(name, (s) => ({ ...s, excludes: s.excludes.includes(v) ? s.excludes : [...s.excludes, v] }));
  }

  addDeleteEntry(name: string, p: string): Promise<LayerInfo> {
    const v = viewPathArg(p, 'PATH');
    return this.edit(name, (s) => ({ ...s, deletes: s.deletes.includes(v) ? s.deletes : [...s.deletes, v] }));
  }

  /** `spec` is unchecked: saving checks it as layer.json and names the field. */
  update(name: string, spec: Record<string, unknown>): Promise<LayerInfo> {
    if (spec.name !== name) {
      return Promise.reject(
        new StrataError(
          'E_LAYER_INVALID',
          `renaming "${name}" to "${String(spec.name)}" is not supported yet`,
          'Export the layer and import it under the new name.',
        ),
      );
    }
    return this.edit(name, () => spec as LayerSpec);
  }

  /** Errors refuse a save; warnings (a destination or a required layer not there yet) are only shown. */
  async validate(raw: unknown): Promise<{ problems: Problem[] }> {
    const { spec, problems } = checkLayerSpec(raw, 'layer.json');
    if (!spec) return { problems };
    const cycle = this.cycleProblem(spec, 'layer.json');
    return {
      problems: [...(cycle ? [cycle] : []), ...this.unknownRequired(spec, 'layer.json'), ...(await this.missingDestinations(spec))],
    };
  }

  /** A requirement that closes a cycle back to `spec` (with the store's layers as they are). */
  private cycleProblem(spec: Pick<LayerSpec, 'name' | 'requires'>, file: string): Problem | null {
    const reqs = spec.requires ?? [];
    if (reqs.includes(spec.name)) return null; // checkLayerSpec names that one
    const cycle = cycleThrough(spec.name, (n) => (n === spec.name ? reqs : this.o.catalog.get(n)?.requires));
    if (!cycle) return null;
    return {
      code: 'E_LAYER_INVALID',
      message: `${file}: requires[${reqs.indexOf(cycle[1])}]: requirements would go round in a cycle: ${cycle.map((n) => `"${n}"`).join(' → ')}`,
      hint: 'Remove one of these requirements.',
    };
  }

  private refuseCycle(spec: Pick<LayerSpec, 'name' | 'requires'>, file: string): void {
    const p = this.cycleProblem(spec, file);
    if (p) throw new StrataError(p.code, p.message, `${p.hint} Nothing was changed.`);
  }

  private unknownRequired(spec: LayerSpec, file: string): Problem[] {
    return (spec.requires ?? []).flatMap((r, i) =>
      this.o.catalog.has(r)
        ? []
        : [
            {
              code: 'E_LAYER_UNKNOWN' as const,
              severity: 'warning' as const,
              message: `${file}: requires[${i}]: no layer "${r}" in the store: activating "${spec.name}" fails until it is created or imported`,
            },
          ],
    );
  }

  /** Destinations not in the layer's read-only files (only for a layer already in the store). */
  private async missingDestinations(spec: LayerSpec): Promise<Problem[]> {
    if (!this.o.store.exists(spec.name)) return [];
    const where = async (dir: string, rel: string) =>
      fsp.lstat(path.join(dir, rel)).then(
        () => true,
        () => false,
      );
    const out: Problem[] = [];
    for (const [i, m] of spec.mappings.entries()) {
      const rel = destRel(m);
      if (await where(this.o.store.filesDir(spec.name), rel)) continue;
      const writable = await where(this.o.store.writableDir(spec.name), rel);
      out.push({
        code: 'E_MAPPING_MISSING',
        severity: 'warning',
        message: `layer.json: mappings[${i}].destination: "${m.destination}" is not in the layer's files${
          writable
            ? ' (only in its writable sublayer, which a reset discards)'
            : `: ${m.original} shows nothing until something is written there`
        }`,
      });
    }
    return out;
  }

  reset(name: string): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const spec = this.o.catalog.require(name);
      await this.o.store.reset(name);
      // The views see a new writable folder in the table and drop what they cached from the old one.
      if (this.o.switch.isActive(name)) await this.o.views.apply();
      const info = await this.info(spec); // measured now, so a list after the event shows 0 bytes
      this.o.emit('layer-reset');
      return info;
    });
  }

  /** Reads only layer.json and files/, which switches never change: no need to wait for them. */
  async exportTo(name: string, file: string, progress?: Progress): Promise<{ file: string; bytes: number; sha256: string }> {
    const real = await this.outsideViews(file, 'export file');
    return { file: path.resolve(file), ...(await this.o.store.exportTo(name, real, progress)) };
  }

  private install(staged: Staged, reason: string, progress?: Progress): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const spec = await this.o.store.install(staged, progress);
      await this.o.catalog.reload();
      this.o.emit(reason);
      return this.info(spec);
    });
  }

  /**
   * Unpacked and checked outside the queue (see archive.ts for the limits); only installing it
   * waits. `verify` (a team pull) may refuse the unpacked layer before it enters the store.
   */
  async importFrom(file: string, progress?: Progress, verify?: (dir: string, spec: LayerSpec) => Promise<void>): Promise<LayerInfo> {
    const real = await this.outsideViews(file, 'layer archive');
    return this.install(await this.o.store.stageImport(real, this.o.importLimits, progress, verify), 'layer-imported', progress);
  }

  /** The real path of a file the agent is to read or write, refused inside a view it serves. */
  private async outsideViews(file: string, what: string): Promise<string> {
    const mounted = this.o.views.list().filter((v) => v.state === 'mounted');
    const { real, view } = await viewHolding(mounted, file);
    if (view) {
      throw new StrataError(
        'E_BAD_REQUEST',
        `${what} ${path.resolve(file)} is inside the view at ${view.mountpoint}, which this agent serves`,
        'Keep it outside the view, or let the client send its content.',
      );
    }
    return real;
  }

  /** Change a layer's rules through `change`, validate, save, and apply to the views if active. */
  private edit(name: string, change: (spec: LayerSpec) => LayerSpec): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const before = await this.o.catalog.requireValid(name);
      const changed = change(structuredClone(before));
      const file = this.o.store.specFile(name);
      const checked = checkLayerSpec(changed, file).spec; // save names any other problem
      if (checked) this.refuseCycle(checked, file);
      const after = await this.o.store.save(changed);
      await this.o.catalog.reload();
      const active = this.o.switch.isActive(name);
      const paths = active ? [...new Set([...rulePaths(before), ...rulePaths(after)])] : [];
      if (active) {
        await this.o.views.apply(async () => {
          await this.o.store.save(before);
          await this.o.catalog.reload();
        });
      }
      this.o.emit('layer-changed', paths.length ? { paths, stale: [] } : undefined);
      return this.info(after);
    });
  }
}

/** A mapping from the command line, normalized; E_BAD_REQUEST / E_MAPPING_ESCAPE name the bad part. */
function mappingArgs(original: string, destination: string): Mapping {
  const o = viewPathArg(original, 'ORIGINAL');
  let d: string;
  try {
    d = normalizeLayerPath(destination);
  } catch (e) {
    throw new StrataError(
      'E_MAPPING_ESCAPE',
      `DESTINATION ${destination}: ${(e as Error).message}`,
      'Give a path inside the layer, relative to its files.',
    );
  }
  return { original: o, destination: d === '' ? '/' : d };
}

function viewPathArg(p: string, what: string): string {
  try {
    return normalizeViewPath(p);
  } catch (e) {
    throw new StrataError('E_BAD_REQUEST', `${what} ${p}: ${(e as PathError).message}`, 'Give a path inside the view, like /bin/node.');
  }
}
