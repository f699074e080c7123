/** What the form edits: a layer spec with the number kept as typed. Pure. */
import { LAYER_FORMAT, LayerSpec, Mapping } from '../protocol/layer';

export interface Draft {
  name: string;
  version: string;
  description: string;
  /** As typed; the agent judges it. */
  priority: string;
  mappings: Mapping[];
  excludes: string[];
  deletes: string[];
  /** Names of the layers this one requires. */
  requires: string[];
}

export function draftOf(spec: LayerSpec): Draft {
  return {
    name: spec.name,
    version: spec.version,
    description: spec.description,
    priority: String(spec.priority),
    mappings: spec.mappings.map((m) => ({ ...m })),
    excludes: [...spec.excludes],
    deletes: [...spec.deletes],
    requires: [...(spec.requires ?? [])],
  };
}

export function specOf(d: Draft): LayerSpec {
  const p = d.priority.trim();
  // Absent when empty, as the agent writes it, so an untouched layer compares equal.
  const requires = d.requires.map((x) => x.trim());
  return {
    format: LAYER_FORMAT,
    name: d.name.trim(),
    version: d.version,
    description: d.description,
    // An empty or non-numeric priority goes as NaN (null on the wire) so the agent names the field.
    priority: p === '' ? NaN : Number(p),
    mappings: d.mappings.map((m) => ({ original: m.original.trim(), destination: m.destination.trim() })),
    excludes: d.excludes.map((x) => x.trim()),
    deletes: d.deletes.map((x) => x.trim()),
    ...(requires.length ? { requires } : {}),
  };
}

export function sameSpec(a: LayerSpec | null, b: LayerSpec | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The field a problem belongs to, or the nearest enclosing one that has a slot. */
export function slotFor(field: string, has: (f: string) => boolean): string {
  let f = field;
  while (f && !has(f)) {
    const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
    f = cut > 0 ? f.slice(0, cut) : '';
  }
  return f;
}
