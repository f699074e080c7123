/**
 * The local switch: the active set and every change to it. Activate, deactivate and swap come
 * from the user; applyTeamSet applies a team decision (team/service.ts calls it). Each change is
 * persisted, rebuilt into the resolver, taken by every view (its server invalidates what changed),
 * and only then answered and announced.
 */
import { ViewChange } from '../protocol';
import { StrataError } from '../shared/errors';
import { Closure, requiredBy, requirementClosure } from '../shared/requires';
import { LayerCatalog } from './catalog';
import { Queue } from './queue';
import { StateFile } from './statefile';
import { Views } from './fuse/views';

export interface SwitchOptions {
  queue: Queue;
  state: StateFile;
  catalog: LayerCatalog;
  views: Views;
  emit: (reason: string, change?: ViewChange) => void;
  log?: (msg: string) => void;
}

/** STRATA_SWITCH_TIMING=1: each switch logs how long its steps took (for measuring, off by default). */
class Steps {
  private t = performance.now();
  private parts: string[] = [];
  constructor(private readonly on: boolean) {}
  mark(step: string): void {
    if (!this.on) return;
    const now = performance.now();
    this.parts.push(`${step} ${(now - this.t).toFixed(2)}`);
    this.t = now;
  }
  text(): string {
    return this.parts.join(', ');
  }
}

export class LocalSwitch {
  /** The last switch's stale holders, announced once known (after the answer). */
  private announced = Promise.resolve();
  private readonly timing = process.env.STRATA_SWITCH_TIMING === '1';

  constructor(private readonly o: SwitchOptions) {}

  private begin(): Steps {
    return new Steps(this.timing);
  }

  private end(op: string, st: Steps): void {
    if (this.timing) this.o.log?.(`[switch] ${op} ms: ${st.text()}`);
  }

  /** The active layers (those that exist and are valid). */
  active(): string[] {
    return this.o.catalog.effectiveActive();
  }

  /** In the persisted active set, even if its layer.json is broken. */
  isActive(name: string): boolean {
    return this.o.state.data.active.includes(name);
  }

  /** What activating `names` activates: them and what they require, transitively, requirements first. */
  requirements(names: readonly string[]): Closure {
    return requirementClosure(names, (n) => {
      const spec = this.o.catalog.get(n);
      return spec ? (spec.requires ?? []) : undefined;
    });
  }

  /**
   * Team layers that active personal layers require (transitively): held here, as by `team hold`,
   * while those stay active, so a teammate's decision does not pull a tool's prerequisite out from
   * under it (nor switch the tool off: a requirement is refused, never cascaded).
   */
  heldByRequirement(teamLayers: readonly string[]): string[] {
    const isTeam = new Set(teamLayers);
    const personal = this.o.state.data.active.filter((n) => !isTeam.has(n));
    return this.requirements(personal).order.filter((n) => isTeam.has(n));
  }

  /** Activating a layer activates what it requires, in the same switch (one state, one event). */
  activate(names: string[]): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      const st = this.begin();
      // A layer.json edited by hand may have become invalid: surface that on use, not later.
      await this.o.catalog.reload();
      st.mark('reload');
      const next = [...this.o.state.data.active];
      for (const n of await this.withRequirements(names)) if (!next.includes(n)) next.push(n);
      st.mark('requirements');
      await this.apply(next, 'activate', st);
      this.end('activate', st);
      return { active: this.active() };
    });
  }

  /** Refused while an active layer that stays requires one of `names` (--force is about open files only). */
  deactivate(names: string[], force = false): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      const active = this.o.state.data.active;
      for (const n of names) {
        if (!active.includes(n)) this.o.catalog.require(n);
      }
      this.refuseIfRequired(
        names,
        active.filter((n) => !names.includes(n)),
      );
      const st = this.begin();
      if (!force) await this.refuseIfBusy(names);
      st.mark('busy');
      await this.apply(
        active.filter((n) => !names.includes(n)),
        'deactivate',
        st,
      );
      this.end('deactivate', st);
      return { active: this.active() };
    });
  }

  /** Replace OLD by NEW in one step: one persisted state, one rebuild, one invalidation. */
  swap(oldName: string, newName: string, force = false): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      const st = this.begin();
      await this.o.catalog.reload();
      this.o.catalog.require(oldName);
      const incoming = await this.withRequirements([newName]);
      if (!this.isActive(oldName)) {
        throw new StrataError(
          'E_LAYER_INACTIVE',
          `layer "${oldName}" is not active`,
          `Activate "${newName}" directly with "strata activate ${newName}".`,
        );
      }
      const set = this.o.state.data.active.filter((n) => n !== oldName || incoming.includes(n));
      for (const n of incoming) if (!set.includes(n)) set.push(n);
      if (!set.includes(oldName)) this.refuseIfRequired([oldName], set);
      if (!force) await this.refuseIfBusy([oldName]);
      await this.apply(set, 'swap', st);
      this.end('swap', st);
      return { active: this.active() };
    });
  }

  /**
   * Make the team layers match the team's decision in one step: among `teamLayers`, exactly
   * `desired` is active, except `held` ones (and those personal layers require), which stay as
   * they are here. Returns the desired layers missing from the store (to be pulled). Files open in the views do not block a team
   * switch: a teammate's decision is applied like `--force`.
   */
  applyTeamSet(teamLayers: string[], desired: string[], held: string[], reason: string): Promise<{ active: string[]; missing: string[] }> {
    return this.o.queue.run(async () => {
      const catalog = this.o.catalog;
      const st = this.begin();
      await catalog.reload();
      const isTeam = new Set(teamLayers);
      const now = this.o.state.data.active;
      held = [...new Set([...held, ...this.heldByRequirement(teamLayers)])];
      const keep = now.filter((n) => !isTeam.has(n) || held.includes(n));
      const want = desired.filter((n) => !held.includes(n));
      // One whose files turned bad is left out like a broken layer.json (logged, then pulled again).
      for (const n of want.filter((x) => !now.includes(x))) {
        try {
          catalog.checkFiles(n);
        } catch (e) {
          catalog.skipped(n, e as Error);
        }
      }
      const missing = want.filter((n) => !catalog.has(n));
      const next = [...new Set([...keep, ...want.filter((n) => catalog.has(n))])];
      const before = new Set(now);
      const after = new Set(next);
      const changed = [...before, ...after].filter((n) => before.has(n) !== after.has(n));
      if (changed.length) await this.apply(next, reason, st);
      this.end(reason, st);
      return { active: this.active(), missing };
    });
  }

  /**
   * Refuse to switch off `leaving` while a layer of `staying` requires one of them, naming both and
   * the command that switches them off together (with whatever requires those, transitively).
   */
  refuseIfRequired(leaving: readonly string[], staying: readonly string[]): void {
    const requiresOf = (n: string) => this.o.catalog.get(n)?.requires ?? [];
    const held = requiredBy(leaving, staying, requiresOf);
    if (!held.size) return;
    const all = [...leaving];
    for (let more = [...new Set([...held.values()].flat())]; more.length;) {
      all.push(...more);
      more = [...new Set([...requiredBy(all, staying, requiresOf).values()].flat())].filter((n) => !all.includes(n));
    }
    const q = (ns: readonly string[]) => ns.map((n) => `"${n}"`).join(', ');
    const what = [...held].map(([layer, by]) => `"${layer}" is required by active layer${by.length > 1 ? 's' : ''} ${q(by)}`);
    throw new StrataError(
      'E_LAYER_REQUIRED',
      `${what.join('; ')}`,
      `Nothing was changed. Deactivate ${all.length - leaving.length > 1 ? 'them' : 'it'} too: strata deactivate ${all.join(' ')}`,
    );
  }

  /** Of these layers, those with files open in any view (for --when-idle). */
  busy(names: string[]): Promise<string[]> {
    return this.o.views.busyLayers(names);
  }

  /** The same as last seen, at most about a second old (reported to teammates, synchronously). */
  busySeen(names: string[]): string[] {
    const seen = this.o.views.busySeen();
    return names.filter((n) => seen.has(n));
  }

  /**
   * Persist the new active set, rebuild, have every view take it, then announce. The active set
   * changes in memory only once state.json holds it: a failed write (a full disk) is no switch. A
   * view that refuses the table undoes the switch (persisted and in every view) and the failure is
   * thrown.
   */
  private async apply(next: string[], reason: string, st: Steps): Promise<void> {
    const prev = this.o.state.data;
    await this.o.state.commit({ ...prev, active: next });
    st.mark('commit');
    this.o.catalog.rebuild();
    st.mark('rebuild');
    await this.o.views.apply(async () => {
      await this.o.state.commit({ ...this.o.state.data, active: prev.active });
      this.o.catalog.rebuild();
    });
    st.mark('push');
    const was = new Set(prev.active);
    const now = new Set(next);
    this.announce(reason, [...new Set(this.o.catalog.rulePathsOf([...was, ...now].filter((n) => was.has(n) !== now.has(n))))]);
  }

  /**
   * Editors and tools follow: what changed (announced before the switch is answered), and who
   * still runs what was there before. Asking the servers who holds what takes a round trip to
   * each, so that comes after the answer, in an event of its own (the same reason, no paths),
   * sent only when someone does; these events keep the order of the switches.
   */
  private announce(reason: string, paths: string[]): void {
    this.o.emit(reason, { paths, stale: [] });
    if (!paths.length) return;
    this.announced = this.announced.then(async () => {
      const stale = await this.o.views.staleHolders(paths).catch((e: Error) => {
        this.o.log?.(`[switch] who still holds replaced files: ${e.message}`);
        return [];
      });
      if (stale.length) this.o.emit(reason, { paths: [], stale });
    });
  }

  /** `names` with what they require; a required layer missing from the store (or broken) fails the switch, naming who requires it. */
  private async withRequirements(names: string[]): Promise<string[]> {
    for (const n of names) await this.o.catalog.requireValid(n);
    const { order, missing } = this.requirements(names);
    for (const m of missing) {
      try {
        await this.o.catalog.requireValid(m.name); // a broken layer.json: its own error
      } catch (e) {
        if (e instanceof StrataError && e.code !== 'E_LAYER_UNKNOWN') {
          throw new StrataError(e.code, `layer "${m.by}" requires "${m.name}": ${e.message}`, e.hint);
        }
      }
      throw new StrataError(
        'E_LAYER_UNKNOWN',
        `layer "${m.by}" requires "${m.name}", which is not in the store`,
        `Nothing was changed. Create or import "${m.name}" (strata layer import FILE), or remove it from the requires of "${m.by}".`,
      );
    }
    for (const n of order) if (!this.isActive(n)) this.o.catalog.checkFiles(n);
    return order;
  }

  private async refuseIfBusy(names: string[]): Promise<void> {
    // One process often holds several files (or one file through several threads): name it once.
    const byPid = new Map<number, { command: string; paths: Set<string> }>();
    for (const h of await this.o.views.holders(names)) {
      const p = byPid.get(h.pid) ?? { command: h.command, paths: new Set<string>() };
      byPid.set(h.pid, p.paths.add(h.path) && p);
    }
    if (byPid.size) {
      const who = [...byPid]
        .slice(0, 5)
        .map(([pid, { command, paths }]) => {
          const [first] = paths;
          return `pid ${pid} (${command}) has ${paths.size === 1 ? `${first} open` : `${paths.size} files open (${first}, ...)`}`;
        })
        .join('; ');
      throw new StrataError(
        'E_LAYER_BUSY',
        `files of ${names.join(', ')} are open: ${who}${byPid.size > 5 ? `; and ${byPid.size - 5} more processes` : ''}`,
        'Close them, or pass --force to switch anyway (open files keep their old content).',
      );
    }
  }
}
