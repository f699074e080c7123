/**
 * The rule table strata-viewd resolves with (docs/view-core.md): the active layers of a Resolver
 * in resolution order, each with its folders and rules, as text. The Resolver stays the single
 * source of truth; the server swaps each new table in atomically.
 */
import type { Resolver } from '../../shared/resolver';

export const RULE_TABLE_VERSION = 1;

/** Where a layer's places are on disk. */
export interface TablePlaces {
  /** The read-only sublayer. */
  filesDir(layer: string): string;
  /** The writable sublayer (copy-up target). */
  writableDir(layer: string): string;
  /** The server's bookkeeping for the writable sublayer (whiteouts, opaque folders). */
  metaDir(layer: string): string;
}

/** UTF-8 bytes outside '!'..'~', and '%' itself, as %XX; so no field holds a space or newline. */
export function pctEncode(s: string | Uint8Array): string {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  let out = '';
  for (const b of bytes) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The bytes a percent-encoded field stands for; throws on a malformed field. */
export function pctDecode(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw new Error(`malformed percent-encoding at ${i} in "${s}"`);
      out.push(parseInt(h, 16));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e) {
      out.push(c);
    } else {
      throw new Error(`unencoded byte ${c} at ${i} in "${s}"`);
    }
  }
  return Buffer.from(out);
}

function dest(rel: string): string {
  return rel === '' ? '.' : pctEncode(rel);
}

/**
 * Compiles the active layers of `resolver` into table text. `generation` increases with every
 * table the agent sends, so replies and logs say which one is in force.
 */
export function compileRuleTable(resolver: Resolver, places: TablePlaces, generation: number): string {
  if (!Number.isSafeInteger(generation) || generation < 0) throw new RangeError(`generation ${generation} is not a whole number`);
  const lines = [`strata-rules ${RULE_TABLE_VERSION}`, `generation ${generation}`];
  for (const l of resolver.layers) {
    const dirs = [places.filesDir(l.name), places.writableDir(l.name), places.metaDir(l.name)];
    for (const d of dirs) if (!d.startsWith('/')) throw new RangeError(`layer ${l.name}: folder "${d}" is not absolute`);
    lines.push(['layer', pctEncode(l.name), ...dirs.map(pctEncode)].join(' '));
    for (const m of l.mappings) lines.push(`map ${pctEncode(m.original)} ${dest(m.destination)}`);
    for (const e of l.excludes) lines.push(`exclude ${pctEncode(e)}`);
    for (const d of l.deletes) lines.push(`delete ${pctEncode(d)}`);
  }
  lines.push('end');
  return lines.join('\n') + '\n';
}
