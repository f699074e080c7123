/**
 * Layer prerequisites (`requires` in layer.json), as Lmod's depends_on or Dev Container features'
 * dependsOn: the closure a switch brings in, the active layers that hold a layer in place, and
 * cycles. Pure: `requiresOf` answers from whatever the caller knows (undefined: no such layer).
 */

export type RequiresOf = (name: string) => readonly string[] | undefined;

export interface Closure {
  /** `names` and everything they require, transitively, each requirement before what requires it. */
  order: string[];
  /** Required layers that do not exist, with the layer that requires each. */
  missing: { name: string; by: string }[];
}

/** What activating `names` activates. A cycle (a hand-edited layer.json) ends where it closes. */
export function requirementClosure(names: readonly string[], requiresOf: RequiresOf): Closure {
  const order: string[] = [];
  const missing: Closure['missing'] = [];
  const seen = new Set<string>();
  const visit = (name: string, by: string | null): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const reqs = requiresOf(name);
    if (reqs === undefined) {
      if (by !== null) missing.push({ name, by });
      return;
    }
    for (const r of reqs) visit(r, name);
    order.push(name);
  };
  for (const n of names) visit(n, null);
  return { order, missing };
}

/**
 * Layers of `remaining` that require one of `leaving` directly: what refuses its deactivation.
 * Returns each leaving layer with the layers requiring it (only those with any).
 */
export function requiredBy(leaving: readonly string[], remaining: readonly string[], requiresOf: RequiresOf): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const holder of remaining) {
    if (leaving.includes(holder)) continue;
    for (const r of requiresOf(holder) ?? []) {
      if (leaving.includes(r)) out.set(r, [...(out.get(r) ?? []), holder]);
    }
  }
  return out;
}

/** A requirement cycle through `start`, as the path [start, ..., start], or null. */
export function cycleThrough(start: string, requiresOf: RequiresOf): string[] | null {
  const done = new Set<string>();
  const path: string[] = [start];
  const walk = (name: string): boolean => {
    for (const r of requiresOf(name) ?? []) {
      if (r === start) {
        path.push(r);
        return true;
      }
      if (done.has(r)) continue;
      done.add(r);
      path.push(r);
      if (walk(r)) return true;
      path.pop();
    }
    return false;
  };
  return walk(start) ? path : null;
}

/** `requiresOf` with one layer's requirements replaced (a spec about to be saved). */
export function withRequires(requiresOf: RequiresOf, name: string, requires: readonly string[]): RequiresOf {
  return (n) => (n === name ? requires : requiresOf(n));
}
