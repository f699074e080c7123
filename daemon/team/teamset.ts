/**
 * What the registers mean for a team file: the team's active set, and the writes that make a
 * switch (slots honoured). Pure functions of a register lookup.
 */
import { RegisterValue, RegisterWrite, TeamFile } from '../../protocol/team';
import { StrataError } from '../../shared/errors';

/** A register's value, or undefined when it was never written. */
export type ReadRegister = (key: string) => RegisterValue | undefined;

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The slots a layer belongs to, sorted. */
function slotsOf(team: TeamFile, layer: string): string[] {
  return Object.keys(team.slots)
    .filter((s) => team.slots[s].includes(layer))
    .sort();
}

/** The slot's layer when its register is unset: its first member listed in the defaults. */
function defaultSlotLayer(team: TeamFile, slot: string): string | null {
  return (team.slots[slot] ?? []).find((m) => team.defaults.includes(m)) ?? null;
}

function slotLayer(read: ReadRegister, team: TeamFile, slot: string): string | null {
  const r = read(`slot:${slot}`);
  if (r && 'layer' in r) return r.layer;
  return defaultSlotLayer(team, slot);
}

function layerActive(read: ReadRegister, team: TeamFile, layer: string): boolean {
  const r = read(`layer:${layer}`);
  if (r && 'active' in r) return r.active;
  return team.defaults.includes(layer);
}

/** What an unset register means: with the team file its default, without it inactive / no layer. */
export function unsetValue(key: string, team?: TeamFile): RegisterValue {
  const name = key.slice(key.indexOf(':') + 1);
  if (key.startsWith('layer:')) return { active: team ? team.defaults.includes(name) : false };
  return { layer: team ? defaultSlotLayer(team, name) : null };
}

/** The register keys a team file gives meaning to. */
export function teamKeys(team: TeamFile): Set<string> {
  return new Set([...Object.keys(team.layers).map((n) => `layer:${n}`), ...Object.keys(team.slots).map((s) => `slot:${s}`)]);
}

/**
 * The team's active set, sorted. A layer in a slot is active iff the slot names it (every slot,
 * if a malformed team file lists it in several); an unset slot names its first member in the
 * defaults. Other layers follow their register, or the defaults when it is unset. So at most one
 * layer per slot is ever active.
 */
export function desiredActive(read: ReadRegister, team: TeamFile): string[] {
  const out: string[] = [];
  for (const name of Object.keys(team.layers)) {
    const slots = slotsOf(team, name);
    const active = slots.length ? slots.every((s) => slotLayer(read, team, s) === name) : layerActive(read, team, name);
    if (active) out.push(name);
  }
  return out.sort();
}

/**
 * Writes for activating/deactivating team layers, honouring slots. Activating a slot's layer
 * writes slot:S={layer}; deactivating the slot's current layer writes slot:S={layer:null} (a
 * layer not current in its slot is already inactive: no write); other layers write layer:NAME.
 * A swap within a slot is one slot write. Throws for a layer not in the team file, a layer both
 * activated and deactivated, or two layers of one slot activated together (E_TEAM_SLOT: the
 * user's mistake). May return [] (nothing to do): do not make an event of that.
 */
export function writesFor(
  read: ReadRegister,
  team: TeamFile,
  op: { activate?: string[]; deactivate?: string[]; swap?: [string, string] },
): RegisterWrite[] {
  const act = [...(op.activate ?? [])];
  const deact = [...(op.deactivate ?? [])];
  if (op.swap) {
    const [from, to] = op.swap;
    if (from === to) throw new Error(`cannot swap "${from}" with itself`);
    deact.push(from);
    act.push(to);
  }
  for (const n of [...act, ...deact]) {
    if (typeof n !== 'string' || !has(team.layers, n)) throw new Error(`"${n}" is not a layer of team ${team.team}`);
  }
  for (const n of act) if (deact.includes(n)) throw new Error(`cannot activate and deactivate "${n}" at once`);
  const claimed = new Map<string, string>();
  for (const n of new Set(act)) {
    for (const s of slotsOf(team, n)) {
      const other = claimed.get(s);
      if (other !== undefined) {
        throw new StrataError(
          'E_TEAM_SLOT',
          `"${other}" and "${n}" are both in slot ${s}: only one of them can be active`,
          `Name one layer of slot ${s}.`,
        );
      }
      claimed.set(s, n);
    }
  }
  const writes = new Map<string, RegisterValue>();
  for (const n of deact) {
    const slots = slotsOf(team, n);
    if (!slots.length) writes.set(`layer:${n}`, { active: false });
    for (const s of slots) if (slotLayer(read, team, s) === n) writes.set(`slot:${s}`, { layer: null });
  }
  for (const n of act) {
    const slots = slotsOf(team, n);
    if (!slots.length) writes.set(`layer:${n}`, { active: true });
    for (const s of slots) writes.set(`slot:${s}`, { layer: n });
  }
  return [...writes].map(([key, value]) => ({ key, value }));
}
