/**
 * The agent's side of the team: its decisions, made here or by teammates, applied through the
 * local switch, and what it reports. The membership (team.json, key, state, node) is
 * membership.ts. Only team layers (those the team file lists) come here: server.ts sends personal
 * ones straight to the local switch.
 */
import * as os from 'os';
import { Presence, RegisterWrite, Result, TeamEvent, TeamStatus } from '../../protocol';
import { Agent } from '../agent';
import { StrataError } from '../../shared/errors';
import { TeamTransport } from './transport';
import { NodeLimits } from './limits';
import { TeamState, eventId } from './state';
import { saveTeamState } from './statefile';
import { TeamConfig, parseListen, writeConfig } from './config';
import { JoinParams, TeamMembership, readTeamFile } from './membership';
import { LayerPulls } from './pull';
import { teamStatus } from './status';

/** Entries of the applied vector a presence carries at most (about 12 KiB). */
const PRESENCE_APPLIED = 256;

export interface TeamSwitch {
  activate?: string[];
  deactivate?: string[];
  swap?: [string, string];
}

export class TeamService {
  private readonly m: TeamMembership;
  /** The seen vector as of the last state applied here (announced in presence). */
  private applied: Record<string, number> = {};
  private lastDecision: TeamEvent | null = null;
  private readonly pulls: LayerPulls;
  private applying: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  /** Run after the next persist, before applying: sending a decision only once it is on disk. */
  private afterSave: (() => void)[] = [];

  constructor(
    private readonly agent: Agent,
    home: string,
    private readonly log: (m: string) => void,
    opts: { listenOverride?: string; limits?: Partial<NodeLimits> } = {},
  ) {
    const hooks = {
      loaded: (state: TeamState) => {
        this.applied = state.seenVector();
      },
      stateChanged: (reason: string) => this.onStateChanged(reason),
      presence: () => this.presence(),
      readChunk: (layer: string, digest: string, offset: number, length: number) => this.pulls.readChunk(layer, digest, offset, length),
    };
    this.m = new TeamMembership(agent, home, log, hooks, opts);
    this.pulls = new LayerPulls({
      home,
      agent,
      log,
      member: () => (this.cfg && this.node ? { spec: this.cfg.spec, node: this.node } : null),
      pulled: () => this.applyNow('pulled'),
    });
    agent.onChange((reason) => {
      if (reason.startsWith('layer-')) void this.layersChanged();
    });
  }

  /** A layer was created, edited, imported or removed: a team layer's digest may now differ from the team file's (drift). */
  private async layersChanged(): Promise<void> {
    if (!this.cfg) return;
    try {
      if (await this.pulls.refreshDigests(this.teamLayers())) {
        this.node?.announce();
        this.agent.emit('team-digests');
      }
    } catch (e) {
      this.log(`[team] digesting the team layers failed: ${(e as Error).message}`);
    }
  }

  private get cfg(): TeamConfig | null {
    return this.m.cfg;
  }

  private get state(): TeamState | null {
    return this.m.state;
  }

  private get node(): TeamTransport | null {
    return this.m.node;
  }

  get joined(): boolean {
    return this.cfg !== null;
  }

  isTeamLayer(name: string): boolean {
    return !!this.cfg && Object.prototype.hasOwnProperty.call(this.cfg.spec.layers, name);
  }

  /** A team layer this agent follows the team for: switching it is a team decision. A held one switches here only. */
  followsTeam(name: string): boolean {
    return this.isTeamLayer(name) && !this.cfg!.held.includes(name);
  }

  /** Held here: by `team hold`, or because an active personal layer requires it. */
  private heldHere(): string[] {
    return [...new Set([...(this.cfg?.held ?? []), ...this.agent.switch.heldByRequirement(this.teamLayers())])];
  }

  /** After a personal layer was switched off: a team layer it held follows the team again. */
  followAgain(): Promise<void> {
    return this.cfg ? this.applyNow('released') : Promise.resolve();
  }

  private teamLayers(): string[] {
    return this.cfg ? Object.keys(this.cfg.spec.layers) : [];
  }

  // ---- membership (membership.ts) ---------------------------------------------------------------

  /** Rejoin the team this agent was in when it stopped. */
  start(): Promise<void> {
    return this.m.start();
  }

  stop(): Promise<void> {
    return this.m.stop();
  }

  listenPort(): number | null {
    return this.m.listenPort();
  }

  async join(p: JoinParams): Promise<TeamStatus> {
    await this.m.join(p);
    return this.status();
  }

  leave(): Promise<{ left: string }> {
    return this.m.leave();
  }

  private requireJoined(): TeamConfig {
    return this.m.requireJoined();
  }

  // ---- decisions -------------------------------------------------------------------------------

  /**
   * Activate, deactivate or swap team layers (only team layers: the caller splits off the rest)
   * as one decision: recorded, sent to every teammate, and applied here through the local switch.
   */
  async switchTeam(
    op: TeamSwitch,
    opts: { whenIdle?: boolean; timeoutMs?: number } = {},
  ): Promise<{ active: string[]; decision?: string }> {
    const cfg = this.requireJoined();
    op = this.withRequirements(cfg, op);
    if (opts.whenIdle) {
      // Activating one layer of a swap slot switches its siblings off: they are affected too.
      const slotMates = (n: string) => Object.values(cfg.spec.slots).find((members) => members.includes(n)) ?? [n];
      const named = [...(op.activate ?? []), ...(op.deactivate ?? []), ...(op.swap ?? [])];
      await this.waitIdle([...new Set(named.flatMap(slotMates))], opts.timeoutMs ?? 60000);
    }
    const writes = this.state!.writesFor(cfg.spec, op);
    if (!writes.length) return { active: this.agent.switch.active() }; // the team already has it so
    const ev = await this.decide(writes);
    return { active: this.agent.switch.active(), decision: eventId(ev) };
  }

  /**
   * What the team layers named require comes into the same decision; a requirement the team file
   * does not list is refused (teammates would get the layer without it). Deactivating a layer that
   * stays required is refused as the local switch refuses it.
   */
  private withRequirements(cfg: TeamConfig, op: TeamSwitch): TeamSwitch {
    const act = [...(op.activate ?? []), ...(op.swap ? [op.swap[1]] : [])];
    const { order } = this.agent.switch.requirements(act);
    const desired = this.state!.desiredActive(cfg.spec);
    const extra = order.filter((n) => !act.includes(n) && !desired.includes(n));
    const outside = extra.filter((n) => !this.isTeamLayer(n));
    if (outside.length) {
      const by = order.filter((n) => this.agent.catalog.get(n)?.requires?.some((r) => outside.includes(r)));
      throw new StrataError(
        'E_TEAM_INVALID',
        `${by.map((n) => `"${n}"`).join(', ')} require${by.length === 1 ? 's' : ''} ${outside.map((n) => `"${n}"`).join(', ')}, which the team file ${cfg.teamFile} does not list`,
        `Nothing was changed. A team decision switches team layers only: add it to the team file too (strata team add ${outside[0]}).`,
      );
    }
    const leaving = [...(op.deactivate ?? []), ...(op.swap ? [op.swap[0]] : [])].filter((n) => !order.includes(n));
    if (leaving.length) this.agent.switch.refuseIfRequired(leaving, [...new Set([...this.agent.switch.active(), ...order])]);
    return extra.length ? { ...op, activate: [...(op.activate ?? []), ...extra] } : op;
  }

  async revert(id: string): Promise<{ decision: string; active: string[] }> {
    this.requireJoined();
    let writes: RegisterWrite[];
    try {
      writes = this.state!.revertWrites(id);
    } catch (e) {
      throw new StrataError('E_TEAM_DECISION_UNKNOWN', (e as Error).message, 'See the decisions with "strata team history".');
    }
    const ev = await this.decide(writes, id);
    return { decision: eventId(ev), active: this.agent.switch.active() };
  }

  async hold(name: string, hold: boolean): Promise<TeamStatus> {
    const cfg = this.requireJoined();
    if (!this.isTeamLayer(name))
      throw new StrataError(
        'E_LAYER_UNKNOWN',
        `"${name}" is not a team layer of ${cfg.spec.team}`,
        `The team file ${cfg.teamFile} lists the team layers.`,
      );
    cfg.held = hold ? [...new Set([...cfg.held, name])] : cfg.held.filter((n) => n !== name);
    await writeConfig(this.m.cfgFile, cfg);
    await this.applyNow('hold');
    return this.status();
  }

  /** Read the team file again (a digest brought up to date, say); the new layers, defaults and slots apply at once. */
  async reload(p: { teamText?: string }): Promise<TeamStatus> {
    const cfg = this.requireJoined();
    const spec = readTeamFile(this.agent, cfg.teamFile, p.teamText);
    if (spec.team !== cfg.spec.team) {
      throw new StrataError(
        'E_TEAM_INVALID',
        `${cfg.teamFile} is the file of team "${spec.team}", this agent is in "${cfg.spec.team}"`,
        'Leave this team first to join the other one.',
      );
    }
    cfg.spec = spec;
    cfg.held = cfg.held.filter((n) => this.isTeamLayer(n));
    await writeConfig(this.m.cfgFile, cfg);
    // Registers of layers the old file did not name were not kept: ask the peers for them again.
    this.node?.resync();
    await this.applyNow('reload');
    return this.status();
  }

  /** Record a decision made here, persist it, send it to the teammates, and apply it. */
  private async decide(writes: RegisterWrite[], reverts?: string): Promise<TeamEvent> {
    const cfg = this.requireJoined();
    const ev = this.state!.local(writes, cfg.name, os.hostname(), reverts, cfg.spec);
    const node = this.node!;
    // Sent only once saved: a restart must never number a new decision like one peers already hold.
    this.afterSave.push(() => node.publish(ev));
    this.lastDecision = ev;
    await this.applyNow('decision');
    // Over NATS, answered once the server has stored it (a cluster electing a new leader takes
    // seconds); past the wait it is still retried in the background.
    await node.delivered?.(ev, 30_000);
    return ev;
  }

  private async waitIdle(layers: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = await this.busyPeers(layers);
      if (!busy.length) return;
      if (Date.now() >= deadline) {
        throw new StrataError(
          'E_TEAM_BUSY',
          `teammates still have files of ${layers.join(', ')} open: ${busy.join('; ')}`,
          'Try again later, or switch without --when-idle.',
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async busyPeers(layers: string[]): Promise<string[]> {
    const out: string[] = [];
    const local = await this.agent.switch.busy(layers);
    if (local.length) out.push(`this agent (${local.join(', ')})`);
    const node = this.node;
    for (const p of node?.presences.values() ?? []) {
      const b = p.busy.filter((n) => layers.includes(n));
      const heard = node!.heardAt(p.agent) ?? 0;
      if (b.length && Date.now() - heard < 3 * node!.limits.heartbeatMs) out.push(`${p.user}@${p.host} (${b.join(', ')})`);
    }
    return out;
  }

  // ---- applying the team's state ---------------------------------------------------------------

  private onStateChanged(reason: string): void {
    this.applyNow(reason).catch((e) => this.log(`[team] applying the team's state failed: ${(e as Error).message}`));
  }

  /**
   * Persist, then apply the registers to the local views, then announce what is applied. Runs are
   * serialized (a persist never overtakes a newer one) and coalesced: a run reads the newest
   * state, so requests made while one is queued need no run of their own.
   */
  private applyNow(reason: string): Promise<void> {
    if (this.queued) return this.queued;
    const run = async () => {
      this.queued = null;
      const cfg = this.cfg;
      const state = this.state;
      const after = this.afterSave;
      this.afterSave = [];
      if (!cfg || !state) return;
      const mark = this.node?.mark?.();
      await saveTeamState(this.m.stateFile, state);
      if (mark !== undefined) this.node?.saved?.(mark);
      for (const f of after) f();
      const seen = state.seenVector();
      const desired = state.desiredActive(cfg.spec);
      const { missing } = await this.agent.switch.applyTeamSet(this.teamLayers(), desired, cfg.held, `team-${reason}`);
      this.applied = seen;
      await this.pulls.refreshDigests(this.teamLayers());
      this.node?.announce();
      this.agent.emit(`team-${reason}`);
      for (const m of missing) void this.pulls.pull(m);
    };
    this.applying = this.applying.then(run, run);
    this.queued = this.applying;
    return this.applying;
  }

  /**
   * The applied vector for presence: what a teammate reads there is its own entry (has this agent
   * applied its decision?), so only agents that are present, the most recently heard first: the
   * senders of a flood of events stay out, and the frame stays small.
   */
  private presentApplied(): Record<string, number> {
    const present = [...(this.node?.presences.keys() ?? [])].slice(-(PRESENCE_APPLIED - 1));
    const out: Record<string, number> = {};
    for (const a of [this.cfg?.agentId ?? '', ...present]) if (this.applied[a]) out[a] = this.applied[a];
    return out;
  }

  private presence(): Omit<Presence, 'agent' | 'pseq' | 'at' | 'key' | 'sig'> {
    const cfg = this.cfg;
    const team = this.teamLayers();
    return {
      user: cfg?.name ?? os.userInfo().username,
      host: os.hostname(),
      active: this.agent.switch.active(),
      held: this.heldHere(),
      applied: this.presentApplied(),
      busy: this.agent.switch.busySeen(team),
      has: this.pulls.has(team),
    };
  }

  // ---- reporting -------------------------------------------------------------------------------

  status(): TeamStatus {
    const { cfg, state, node } = this;
    if (!cfg || !state || !node) return { joined: false };
    const port = this.listenPort();
    return teamStatus({
      cfg,
      state,
      node,
      listen: port !== null ? `${parseListen(this.m.listenSpec()!).host}:${port}` : null,
      active: this.agent.switch.active(),
      pulling: this.pulls.inProgress(),
      lastDecision: state.history().at(-1) ?? this.lastDecision,
      digests: this.pulls.has(this.teamLayers()),
      held: this.heldHere(),
    });
  }

  history(): TeamEvent[] {
    this.requireJoined();
    return this.state!.history();
  }

  /**
   * Delete the archives in the team's store (NATS) that neither this team file nor a teammate's
   * presence names: an archive of an older team file stays while someone online still has it.
   */
  async prune(dryRun: boolean): Promise<Result<'team.prune'>> {
    const cfg = this.requireJoined();
    const store = this.node?.layerStore;
    if (!store) {
      throw new StrataError(
        'E_TEAM_NO_STORE',
        `team ${cfg.spec.team} keeps no layer archives to prune: its teammates serve layers themselves`,
        'Only a team on NATS stores archives (in its Object Store); see docs/nats.md.',
      );
    }
    const keep = new Set(Object.values(cfg.spec.layers ?? {}).map((l) => l.digest));
    const has = [this.pulls.has(this.teamLayers()), ...[...this.node!.presences.values()].map((p) => p.has)];
    for (const h of has) for (const d of Object.values(h)) keep.add(d);
    return { dryRun, ...(await store.prune(keep, dryRun)) };
  }
}
