/**
 * Editing strata.team.json from a client (the CLI's team init/add/remove; the extension can use the
 * same): read and check it with the team file's schema, pin or unpin layers, write it in one step,
 * and make a new secret. Clients do this, not the agent: the file often sits in a project the agent
 * serves in place. Digests come from the agent (`layer.show`).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { TEAM_FILE, checkTeamFile } from '../protocol';
import { StrataError } from './errors';

/** The team file as written: the schema's fields, in this order, plus whatever else a person added. */
export interface TeamFileJson {
  format: number;
  team: string;
  relays: string[];
  layers: Record<string, { digest: string; version?: string }>;
  defaults: string[];
  slots: Record<string, string[]>;
  [more: string]: unknown;
}

/** A layer's pin: its content digest (and version, for people reading the file). */
export interface Pin {
  digest: string;
  version?: string;
}

/** The nearest strata.team.json in `dir` or above, or null. */
export function findTeamFileUp(dir: string): string | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, TEAM_FILE))) return path.join(d, TEAM_FILE);
    if (path.dirname(d) === d) return null;
  }
}

export function readTeamFile(file: string): TeamFileJson {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new StrataError('E_TEAM_INVALID', `cannot read ${file}: ${(e as Error).message}`, 'Fix the file; nothing was changed.');
  }
  const { problems } = checkTeamFile(raw, file);
  if (problems.length) throw new StrataError('E_TEAM_INVALID', problems.join('; '), 'Fix the file; nothing was changed.');
  const t = raw as TeamFileJson;
  return { ...t, layers: t.layers ?? {}, defaults: t.defaults ?? [], slots: t.slots ?? {} };
}

/** Checks with the schema, then replaces the file in one step (a reader never sees half of it). */
export function writeTeamFile(file: string, t: TeamFileJson): void {
  const { problems } = checkTeamFile(t, file);
  if (problems.length) throw new StrataError('E_TEAM_INVALID', problems.join('; '), 'Nothing was written.');
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(t, null, 2) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Adds layers, or updates their pins; says for each what changed. */
export function pinLayers(t: TeamFileJson, pins: Record<string, Pin>): { name: string; before?: string; after: string }[] {
  return Object.entries(pins).map(([name, pin]) => {
    const before = t.layers[name]?.digest;
    t.layers[name] = { ...t.layers[name], ...pin };
    return { name, before, after: pin.digest };
  });
}

/** Removes layers from the layers, the defaults and the slots (a slot left empty goes too). */
export function unpinLayers(t: TeamFileJson, names: string[], file: string): void {
  const unknown = names.filter((n) => !Object.prototype.hasOwnProperty.call(t.layers, n));
  if (unknown.length) {
    throw new StrataError(
      'E_LAYER_UNKNOWN',
      `${unknown.map((n) => `"${n}"`).join(', ')} ${unknown.length === 1 ? 'is not a team layer' : 'are not team layers'} of ${file}`,
      `Its layers: ${Object.keys(t.layers).join(', ') || '(none)'}.`,
    );
  }
  const gone = new Set(names);
  for (const n of gone) delete t.layers[n];
  t.defaults = t.defaults.filter((n) => !gone.has(n));
  for (const [s, ls] of Object.entries(t.slots)) {
    t.slots[s] = ls.filter((n) => !gone.has(n));
    if (!t.slots[s].length) delete t.slots[s];
  }
}

export function secretExists(file: string): StrataError {
  return new StrataError(
    'E_TEAM_SECRET',
    `${file} exists; a new secret never replaces one`,
    'Give another secret file, or keep using that one.',
  );
}

/** Writes a new random secret (32 bytes, hex), readable by its owner only; never shown. */
export function writeNewSecret(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code === 'EEXIST' ? secretExists(file) : e;
  }
}
