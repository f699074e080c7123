/**
 * The effective mapping table: for every rule of every active layer, who answers its path now and
 * why, computed with the agent's own pure resolver from the layers and the active set. Pure (no
 * vscode, no fs), so it says exactly what the agent's view does.
 */
import { LayerSpec } from '../protocol';
import { Resolution, Resolver, RuleLayer, isUnder } from '../shared/resolver';

export type RowState =
  /** This layer answers the path. */
  | 'wins'
  /** A higher layer answers it first; this one only fills in names that one lacks. */
  | 'shadowed'
  /** A delete entry (of this or a higher layer) hides it. */
  | 'hidden'
  /** The layer's own exclude makes it transparent here. */
  | 'excluded'
  /** A delete entry that takes effect. */
  | 'hides'
  /** An exclude: the path resolves past this layer. */
  | 'passes';

export interface TableRow {
  kind: 'mapping' | 'exclude' | 'delete';
  /** The rule's view path. */
  path: string;
  layer: string;
  priority: number;
  /** Mappings: the path inside the layer ('/' for its root). */
  destination?: string;
  state: RowState;
  /** The layer that shadows or hides this rule. */
  by?: string;
  /** Where the path resolves now: 'LAYER:/rel', 'base' or 'hidden'. */
  resolvesTo: string;
}

function toRules(spec: LayerSpec): RuleLayer {
  return {
    name: spec.name,
    priority: spec.priority,
    mappings: spec.mappings.map((m) => ({ original: m.original, destination: m.destination === '/' ? '' : m.destination })),
    excludes: spec.excludes,
    deletes: spec.deletes,
  };
}

export function describeResolution(r: Resolution): string {
  if (r.hidden) return 'hidden';
  const first = r.branches[0];
  if (first) return `${first.layer}:/${first.rel}`;
  return r.base ? 'base' : 'hidden';
}

export function effectiveTable(layers: readonly LayerSpec[], active: readonly string[]): TableRow[] {
  const on = new Set(active);
  const resolver = new Resolver(layers.filter((l) => on.has(l.name)).map(toRules));
  const order = resolver.layers;
  const excluded = (l: RuleLayer, p: string): boolean => l.excludes.some((e) => isUnder(p, e));
  /** The first layer, highest first, whose delete entry ends the chain at `p`. */
  const stopper = (p: string): RuleLayer | undefined => order.find((l) => !excluded(l, p) && l.deletes.some((d) => isUnder(p, d)));
  const rank = new Map(order.map((l, i) => [l.name, i]));
  const above = (a: RuleLayer | undefined, b: RuleLayer): boolean => !!a && rank.get(a.name)! <= rank.get(b.name)!;

  const rows: TableRow[] = [];
  for (const l of order) {
    const base = { layer: l.name, priority: l.priority };
    for (const m of l.mappings) {
      const r = resolver.resolve(m.original);
      const row: TableRow = {
        ...base,
        kind: 'mapping',
        path: m.original,
        destination: '/' + m.destination,
        state: 'wins',
        resolvesTo: describeResolution(r),
      };
      const stop = stopper(m.original);
      if (excluded(l, m.original)) row.state = 'excluded';
      else if (above(stop, l)) Object.assign(row, { state: 'hidden', by: stop!.name });
      else if (r.branches[0] && r.branches[0].layer !== l.name) Object.assign(row, { state: 'shadowed', by: r.branches[0].layer });
      rows.push(row);
    }
    for (const e of l.excludes) {
      rows.push({ ...base, kind: 'exclude', path: e, state: 'passes', resolvesTo: describeResolution(resolver.resolve(e)) });
    }
    for (const d of l.deletes) {
      const stop = stopper(d);
      const row: TableRow = { ...base, kind: 'delete', path: d, state: 'hides', resolvesTo: describeResolution(resolver.resolve(d)) };
      if (excluded(l, d)) row.state = 'excluded';
      else if (stop && stop.name !== l.name) Object.assign(row, { state: 'hidden', by: stop.name });
      rows.push(row);
    }
  }
  return rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : rank.get(a.layer)! - rank.get(b.layer)!));
}
