/**
 * The layers the agent knows (every valid layer.json in the store), their writable marks, and the
 * resolver built from the active ones, which every view reads. Rebuilt after any change of the
 * layers or of the active set.
 */
import { LayerSpec } from '../protocol';
import { StrataError } from '../shared/errors';
import { RuleLayer, Resolver } from '../shared/resolver';
import { LayerStore } from './store';
import { destRel } from './layerspec';
import { LayerMarks } from './fuse/marks';
import { LayerPlaces } from './fuse/viewfs';

function toRules(spec: LayerSpec): RuleLayer {
  return {
    name: spec.name,
    priority: spec.priority,
    mappings: spec.mappings.map((m) => ({ original: m.original, destination: destRel(m) })),
    excludes: spec.excludes,
    deletes: spec.deletes,
  };
}

/** The view paths a layer's rules touch: what to invalidate when it switches. */
export function rulePaths(spec: LayerSpec): string[] {
  return [...spec.mappings.map((m) => m.original), ...spec.excludes, ...spec.deletes];
}

export class LayerCatalog {
  private specs = new Map<string, LayerSpec>();
  private marks = new Map<string, LayerMarks>();
  private current = new Resolver([]);
  private watchedPaths: string[] = [];

  constructor(
    private readonly store: LayerStore,
    /** The persisted active set (it may name layers that are gone or broken). */
    private readonly active: () => readonly string[],
    private readonly log: (msg: string) => void,
  ) {}

  /** Re-read every layer.json; broken ones are logged and left out of the active set. */
  async reload(): Promise<void> {
    const { layers, broken } = await this.store.list();
    this.specs = new Map(layers.map((l) => [l.name, l]));
    for (const b of broken) this.log(`[store] layer ${b.name} skipped: ${b.error.message}`);
    for (const name of this.specs.keys()) this.marksOf(name);
    for (const name of [...this.marks.keys()]) if (!this.specs.has(name)) this.marks.delete(name);
    this.rebuild();
  }

  /** Rebuild the resolver from the active set (after it changed). */
  rebuild(): void {
    this.current = new Resolver(this.effectiveActive().map((n) => toRules(this.specs.get(n)!)));
    this.watchedPaths = [...new Set([...this.specs.values()].flatMap(rulePaths))];
  }

  /** The active layers that exist and are valid. */
  effectiveActive(): string[] {
    return this.active().filter((n) => this.specs.has(n));
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }

  get(name: string): LayerSpec | undefined {
    return this.specs.get(name);
  }

  all(): LayerSpec[] {
    return [...this.specs.values()];
  }

  require(name: string): LayerSpec {
    const s = this.specs.get(name);
    if (!s) {
      throw new StrataError('E_LAYER_UNKNOWN', `no layer named "${name}"`, 'Run "strata layer list" to see the layers.');
    }
    return s;
  }

  /** Like require, but a layer whose layer.json is broken throws its precise validation error. */
  async requireValid(name: string): Promise<LayerSpec> {
    if (!this.specs.has(name) && this.store.exists(name)) await this.store.get(name);
    return this.require(name);
  }

  /** Rule paths of the named layers that exist. */
  rulePathsOf(names: readonly string[]): string[] {
    return names.flatMap((n) => (this.specs.has(n) ? rulePaths(this.specs.get(n)!) : []));
  }

  marksOf(layer: string): LayerMarks {
    let m = this.marks.get(layer);
    if (!m) {
      m = new LayerMarks(this.store.writableDir(layer));
      m.load();
      this.marks.set(layer, m);
    }
    return m;
  }

  resolver(): Resolver {
    return this.current;
  }

  /** View paths under which owners can change: the rule paths of every stored layer. */
  watched(): readonly string[] {
    return this.watchedPaths;
  }

  places(): LayerPlaces {
    return {
      filesDir: (l) => this.store.filesDir(l),
      writableDir: (l) => this.store.writableDir(l),
      marks: (l) => this.marksOf(l),
    };
  }
}
