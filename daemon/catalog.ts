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

/** A layer.json as last read: its version (null: none) and the spec, or nothing when it was broken. */
interface Read {
  key: string | null;
  spec?: LayerSpec;
}

export class LayerCatalog {
  /** Every layer folder, in name order, with what its layer.json held when last read. */
  private read = new Map<string, Read>();
  private current = new Resolver([]);

  constructor(
    private readonly store: LayerStore,
    /** The persisted active set (it may name layers that are gone or broken). */
    private readonly active: () => readonly string[],
    private readonly log: (msg: string) => void,
  ) {}

  /**
   * Re-read every layer.json that changed since it was last read (its inode, size, mtime or
   * ctime); broken ones are logged once per version and left out of the active set.
   */
  async reload(): Promise<void> {
    const read = await Promise.all(
      this.store.names().map(async (name): Promise<[string, Read]> => {
        const key = this.store.specKey(name);
        const old = this.read.get(name);
        if (old && old.key === key) return [name, old]; // a folder without layer.json too: once
        const r: Read = { key };
        try {
          r.spec = await this.store.get(name);
        } catch (e) {
          this.skipped(name, e as Error);
        }
        return [name, r];
      }),
    );
    this.read = new Map(read);
    this.rebuild();
  }

  /**
   * Check again what may have changed without layer.json (the files folder, a destination turned
   * into a symlink) before a layer enters the active set; a failure leaves it out until re-read.
   */
  checkFiles(name: string): void {
    const spec = this.get(name);
    if (!spec) return;
    try {
      this.store.checkFiles(spec);
    } catch (e) {
      this.read.delete(name);
      this.rebuild();
      throw e;
    }
  }

  /** Say that a layer is left out, and why (its layer.json or its files). */
  skipped(name: string, e: Error): void {
    this.log(`[store] layer ${name} skipped: ${e.message}`);
  }

  /** Rebuild the resolver from the active set (after it changed). */
  rebuild(): void {
    this.current = new Resolver(this.effectiveActive().map((n) => toRules(this.get(n)!)));
  }

  /** The active layers that exist and are valid. */
  effectiveActive(): string[] {
    return this.active().filter((n) => this.has(n));
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  rulePathsOf(names: readonly string[]): string[] {
    return names.flatMap((n) => {
      const spec = this.get(n);
      return spec ? rulePaths(spec) : [];
    });
  }

  get(name: string): LayerSpec | undefined {
    return this.read.get(name)?.spec;
  }

  all(): LayerSpec[] {
    return [...this.read.values()].flatMap((r) => (r.spec ? [r.spec] : []));
  }

  require(name: string): LayerSpec {
    const s = this.get(name);
    if (!s) {
      throw new StrataError('E_LAYER_UNKNOWN', `no layer named "${name}"`, 'Run "strata layer list" to see the layers.');
    }
    return s;
  }

  /** Like require, but a layer whose layer.json is broken throws its precise validation error. */
  async requireValid(name: string): Promise<LayerSpec> {
    if (!this.has(name) && this.store.exists(name)) await this.store.get(name);
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
