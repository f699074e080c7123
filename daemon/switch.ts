/**
 * The local switch: the active set and every change to it. Activate, deactivate and swap come
 * from the user; applyTeamSet applies a team decision (team/service.ts calls it). Each change is
 * persisted, rebuilt into the resolver, invalidated in every view, and only then announced.
 */
import { ViewChange } from '../protocol';
import { StrataError } from '../shared/errors';
import { LayerCatalog, rulePaths } from './catalog';
import { Queue } from './queue';
import { StateFile } from './statefile';
import { Views } from './fuse/views';

export interface SwitchOptions {
  queue: Queue;
  state: StateFile;
  catalog: LayerCatalog;
  views: Views;
  emit: (reason: string, change?: ViewChange) => void;
}

export class LocalSwitch {
  constructor(private readonly o: SwitchOptions) {}

  /** The active layers (those that exist and are valid). */
  active(): string[] {
    return this.o.catalog.effectiveActive();
  }

  /** In the persisted active set, even if its layer.json is broken. */
  isActive(name: string): boolean {
    return this.o.state.data.active.includes(name);
  }

  activate(names: string[]): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      // A layer.json edited by hand may have become invalid: surface that on use, not later.
      await this.o.catalog.reload();
      for (const n of names) await this.o.catalog.requireValid(n);
      const next = [...this.o.state.data.active];
      const changed: string[] = [];
      for (const n of names) {
        if (!next.includes(n)) {
          next.push(n);
          changed.push(...this.o.catalog.rulePathsOf([n]));
        }
      }
      await this.apply(next, changed, 'activate');
      return { active: this.active() };
    });
  }

  deactivate(names: string[], force = false): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      const active = this.o.state.data.active;
      for (const n of names) {
        if (!active.includes(n)) this.o.catalog.require(n);
      }
      if (!force) this.refuseIfBusy(names);
      const changed = this.o.catalog.rulePathsOf(names.filter((n) => active.includes(n)));
      await this.apply(
        active.filter((n) => !names.includes(n)),
        changed,
        'deactivate',
      );
      return { active: this.active() };
    });
  }

  /** Replace OLD by NEW in one step: one persisted state, one rebuild, one invalidation. */
  swap(oldName: string, newName: string): Promise<{ active: string[] }> {
    return this.o.queue.run(async () => {
      await this.o.catalog.reload();
      const old = this.o.catalog.require(oldName);
      const next = await this.o.catalog.requireValid(newName);
      if (!this.isActive(oldName)) {
        throw new StrataError(
          'E_LAYER_INACTIVE',
          `layer "${oldName}" is not active`,
          `Activate "${newName}" directly with "strata activate ${newName}".`,
        );
      }
      this.refuseIfBusy([oldName]);
      const set = this.o.state.data.active.filter((n) => n !== oldName);
      if (!set.includes(newName)) set.push(newName);
      await this.apply(set, [...rulePaths(old), ...rulePaths(next)], 'swap');
      return { active: this.active() };
    });
  }

  /**
   * Make the team layers match the team's decision in one step: among `teamLayers`, exactly
   * `desired` is active, except `held` ones, which stay as they are here. Returns the desired
   * layers missing from the store (to be pulled). Files open in the views do not block a team
   * switch: a teammate's decision is applied like `--force`.
   */
  applyTeamSet(teamLayers: string[], desired: string[], held: string[], reason: string): Promise<{ active: string[]; missing: string[] }> {
    return this.o.queue.run(async () => {
      const catalog = this.o.catalog;
      await catalog.reload();
      const isTeam = new Set(teamLayers);
      const now = this.o.state.data.active;
      const keep = now.filter((n) => !isTeam.has(n) || held.includes(n));
      const want = desired.filter((n) => !held.includes(n));
      const missing = want.filter((n) => !catalog.has(n));
      const next = [...new Set([...keep, ...want.filter((n) => catalog.has(n))])];
      const before = new Set(now);
      const after = new Set(next);
      const changed = [...before, ...after].filter((n) => before.has(n) !== after.has(n));
      if (changed.length) await this.apply(next, catalog.rulePathsOf(changed), reason);
      return { active: this.active(), missing };
    });
  }

  /** Of these layers, those with files open in any view (reported to teammates for --when-idle). */
  busy(names: string[]): string[] {
    return names.filter((n) => this.o.views.holders([n]).length > 0);
  }

  /** Persist the new active set, rebuild, invalidate what changed, then announce. */
  private async apply(next: string[], changedRulePaths: string[], reason: string): Promise<void> {
    this.o.state.data.active = next;
    await this.o.state.save();
    this.o.catalog.rebuild();
    await this.o.views.invalidate(changedRulePaths);
    // Editors and tools follow: what changed, and who still runs what was there before.
    const paths = [...new Set(changedRulePaths)];
    this.o.emit(reason, { paths, stale: await this.o.views.staleHolders(paths) });
  }

  private refuseIfBusy(names: string[]): void {
    const busy = this.o.views.holders(names);
    if (busy.length) {
      const who = busy
        .slice(0, 5)
        .map((b) => `pid ${b.pid} (${b.command}) has ${b.path} open`)
        .join('; ');
      throw new StrataError(
        'E_LAYER_BUSY',
        `files of ${names.join(', ')} are open: ${who}${busy.length > 5 ? `; and ${busy.length - 5} more` : ''}`,
        'Close them, or pass --force to switch anyway (open files keep their old content).',
      );
    }
  }
}
