/**
 * Layer commands: create, remove, edit rules, reset, export and import. Edits are validated and
 * saved through the store, then applied to the views when the layer is active.
 */
import * as path from 'path';
import { LayerInfo, LayerSpec } from '../protocol';
import { StrataError } from '../shared/errors';
import { normalizeLayerPath, normalizeViewPath, PathError } from '../shared/resolver';
import { LayerCatalog, rulePaths } from './catalog';
import { checkLayerSpec } from './layerspec';
import { Queue } from './queue';
import { LayerStore, Progress } from './store';
import { LocalSwitch } from './switch';
import { Views } from './fuse/views';

export interface LayersOptions {
  queue: Queue;
  store: LayerStore;
  catalog: LayerCatalog;
  views: Views;
  switch: LocalSwitch;
  emit: (reason: string) => void;
}

export class Layers {
  constructor(private readonly o: LayersOptions) {}

  async info(spec: LayerSpec): Promise<LayerInfo> {
    return { ...spec, active: this.o.switch.active().includes(spec.name), writableBytes: await this.o.store.writableBytes(spec.name) };
  }

  list(): Promise<LayerInfo[]> {
    return Promise.all(this.o.catalog.all().map((s) => this.info(s)));
  }

  async show(name: string): Promise<LayerInfo> {
    await this.o.catalog.reload();
    return this.info(await this.o.catalog.requireValid(name));
  }

  create(
    p: { name: string; from: string; priority?: number; version?: string; description?: string },
    progress?: Progress,
  ): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const from = path.resolve(p.from);
      const mountpoint = this.o.views.mountpointHolding(from);
      if (mountpoint) {
        throw new StrataError(
          'E_LAYER_INVALID',
          `--from ${from} is inside the view at ${mountpoint}`,
          'Capture from a folder outside any Strata view.',
        );
      }
      const spec = await this.o.store.create(p.name, from, p, progress);
      await this.o.catalog.reload();
      this.o.emit('layer-created');
      return this.info(spec);
    });
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
    const o = viewPathArg(original, 'ORIGINAL');
    let d: string;
    try {
      d = normalizeLayerPath(destination);
    } catch (e) {
      return Promise.reject(
        new StrataError(
          'E_MAPPING_ESCAPE',
          `DESTINATION ${destination}: ${(e as Error).message}`,
          'Give a path inside the layer, relative to its files.',
        ),
      );
    }
    return this.edit(name, (s) => {
      s.mappings = s.mappings.filter((m) => m.original !== o);
      s.mappings.push({ original: o, destination: d === '' ? '/' : d });
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

  validate(spec: unknown): { problems: ReturnType<typeof checkLayerSpec>['problems'] } {
    return { problems: checkLayerSpec(spec, 'layer.json').problems };
  }

  reset(name: string): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const spec = this.o.catalog.require(name);
      await this.o.store.reset(name);
      this.o.catalog.marksOf(name).load();
      if (this.o.switch.isActive(name)) await this.o.views.invalidate(rulePaths(spec));
      this.o.emit('layer-reset');
      return this.info(spec);
    });
  }

  exportTo(name: string, file: string): Promise<{ file: string; bytes: number; sha256: string }> {
    return this.o.queue.run(async () => {
      this.o.views.assertOutside(file, 'export file');
      return { file: path.resolve(file), ...(await this.o.store.exportTo(name, file)) };
    });
  }

  importFrom(file: string, progress?: Progress, verify?: (dir: string, spec: LayerSpec) => Promise<void>): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      this.o.views.assertOutside(file, 'layer archive');
      const spec = await this.o.store.importFrom(file, progress, verify);
      await this.o.catalog.reload();
      this.o.emit('layer-imported');
      return this.info(spec);
    });
  }

  /** Change a layer's rules through `change`, validate, save, and apply to the views if active. */
  private edit(name: string, change: (spec: LayerSpec) => LayerSpec): Promise<LayerInfo> {
    return this.o.queue.run(async () => {
      const before = await this.o.catalog.requireValid(name);
      const after = await this.o.store.save(change(structuredClone(before)));
      await this.o.catalog.reload();
      if (this.o.switch.isActive(name)) await this.o.views.invalidate([...rulePaths(before), ...rulePaths(after)]);
      this.o.emit('layer-changed');
      return this.info(after);
    });
  }
}

function viewPathArg(p: string, what: string): string {
  try {
    return normalizeViewPath(p);
  } catch (e) {
    throw new StrataError('E_BAD_REQUEST', `${what} ${p}: ${(e as PathError).message}`, 'Give a path inside the view, like /bin/node.');
  }
}
