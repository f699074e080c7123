/**
 * The layers the agent knows (every valid layer.json in the store) and the resolver built from the
 * active ones, which every view's rule table is compiled from. Rebuilt after any change of the
 * layers or of the active set.
 */
import { LayerSpec } from '../protocol';
import { StrataError } from '../shared/errors';
import { RuleLayer, Resolver } from '../shared/resolver';
import { LayerStore } from './store';
import { destRel } from './layerspec';

function toRules(spec: LayerSpec): RuleLayer {
  return {
    name: spec.name,
    priority: spec.priority,
    mappings: spec.mappings.map((m) => ({ original: m.original, destination: destRel(m) })),
    excludes: spec.excludes,
    deletes: spec.deletes,
  };
}

/** The view paths a layer's rules name: what a switch of it may change. */
export function rulePaths(spec: LayerSpec): string[] {
  return [...spec.mappings.map((m) => m.original), ...spec.excludes, ...spec.deletes];
}

export class LayerCatalog {
  private specs = new Map<string, LayerSpec>();
  private current = new Resolver([]);

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
    this.rebuild();
  }

  /** Rebuild the resolver from the active set (after it changed). */
  rebuild(): void {
    this.current = new Resolver(this.effectiveActive().map((n) => toRules(this.specs.get(n)!)));
  }

  /** The active layers that exist and are valid. */
  effectiveActive(): string[] {
    return this.active().filter((n) => this.specs.has(n));
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }

  rulePathsOf(names: readonly string[]): string[] {
    return names.flatMap((n) => (this.specs.has(n) ? rulePaths(this.specs.get(n)!) : []));
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

  resolver(): Resolver {
    return this.current;
  }

  /** Where a layer's places are, for the rule table. */
  filesDir(layer: string): string {
    return this.store.filesDir(layer);
  }
  writableDir(layer: string): string {
    return this.store.writableDir(layer);
  }
  metaDir(layer: string): string {
    return this.store.metaDir(layer);
  }
}
