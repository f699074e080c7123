/**
 * Active layers of equal priority that claim the same view path: the resolver orders them by name,
 * so one wins there silently. This finds those paths and names the winner by asking the resolver
 * itself, so what is reported is what the view does. Pure; used by the CLI (and any client).
 */
import { Resolver, RuleLayer, isUnder } from './resolver';

/** What this needs of a layer: LayerInfo has it. */
export interface LayerRules {
  name: string;
  priority: number;
  active: boolean;
  mappings: { original: string }[];
  excludes: string[];
  deletes: string[];
}

export interface Overlap {
  /** The view path (and what lies below it) both claim. */
  path: string;
  priority: number;
  winner: string;
  /** The other layers of that priority that claim the path, in the order they are consulted. */
  losers: string[];
}

export function equalPriorityOverlaps(layers: readonly LayerRules[]): Overlap[] {
  const active = layers.filter((l) => l.active);
  const rules: RuleLayer[] = active.map((l) => ({
    name: l.name,
    priority: l.priority,
    mappings: l.mappings.map((m) => ({ original: m.original, destination: '' })),
    excludes: l.excludes,
    deletes: l.deletes,
  }));
  const priority = new Map(active.map((l) => [l.name, l.priority]));
  const resolver = new Resolver(rules);
  const paths = [...new Set(active.flatMap((l) => l.mappings.map((m) => m.original)))].sort();
  const out: Overlap[] = [];
  for (const p of paths) {
    const [first, ...rest] = resolver.resolve(p).branches.map((b) => b.layer);
    const tied = rest.filter((n) => priority.get(n) === priority.get(first));
    if (!tied.length) continue;
    const o: Overlap = { path: p, priority: priority.get(first)!, winner: first, losers: tied };
    // A path below one already reported, with the same layers in the same order, says nothing new.
    if (out.some((q) => isUnder(p, q.path) && q.winner === o.winner && q.losers.join() === o.losers.join())) continue;
    out.push(o);
  }
  return out;
}

/** "at /tools: node18 wins over node20 (both priority 100: a tie goes to the name sorted first)". */
export function overlapText(o: Overlap): string {
  const both = o.losers.length === 1 ? 'both' : 'all';
  return `at ${o.path}: ${o.winner} wins over ${o.losers.join(', ')} (${both} priority ${o.priority}: a tie goes to the name sorted first)`;
}
