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
  private specs = new Map<string, LayerSpec>();
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
    const names = this.store.names();
    const read = new Map<string, Read>();
    await Promise.all(
      names.map(async (name) => {
        const key = this.store.specKey(name);
        let r = this.read.get(name);
        if (!r || r.key === null || r.key !== key) {
          r = { key };
          try {
            r.spec = await this.store.get(name);
          } catch (e) {
            this.log(`[store] layer ${name} skipped: ${(e as Error).message}`);
          }
        }
        read.set(name, r);
      }),
    );
    this.read = read;
    this.specs = new Map(names.flatMap((n) => (read.get(n)!.spec ? [[n, read.get(n)!.spec!] as const] : [])));
    this.rebuild();
  }

  /**
   * Check again what may have changed without layer.json (the files folder, a destination turned
   * into a symlink) before a layer enters the active set; a failure leaves it out until re-read.
   */
  checkFiles(name: string): void {
    const spec = this.specs.get(name);
    if (!spec) return;
    try {
      this.store.checkFiles(spec);
    } catch (e) {
      this.specs.delete(name);
      this.read.delete(name);
      this.rebuild();
      throw e;
    }
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
