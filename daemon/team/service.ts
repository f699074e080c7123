/**
 * The agent's side of the team: membership (team.json), the replicated state, the node that
 * keeps it in step with teammates, and applying the team's decisions through the local switch.
 * Only team layers (those the team file lists) come here: server.ts sends personal ones straight
 * to the local switch.
 */
import * as os from 'os';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { Presence, RegisterWrite, TeamEvent, TeamFile, TeamStatus, isNatsUrl } from '../../protocol';
import { Agent } from '../agent';
import { StrataError } from '../../shared/errors';
import { writeFileAtomic } from '../atomic';
import { TeamNode } from './node';
import { TeamTransport, checkTeamUrl } from './transport';
import { NatsNode } from './nats/node';
import { seedsOf } from './nats/names';
import { NodeLimits, limitsFromEnv } from './limits';
import { Identity, createIdentity, loadIdentity } from './identity';
import { teamKeys } from './teamset';
import { TeamState, eventId } from './state';
import { loadTeamState, saveTeamState, savedFormat } from './statefile';
import { HlcClock } from './hlc';
import { deriveKey, readSecretFile } from './auth';
import { loadTeamFile, parseTeamFile } from './teamfile';
import { TeamConfig, listenError, parseListen, readConfig, writeConfig } from './config';
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
  private cfg: TeamConfig | null = null;
  private state: TeamState | null = null;
  private node: TeamTransport | null = null;
  /** The seen vector as of the last state applied here (announced in presence). */
  private applied: Record<string, number> = {};
  private lastDecision: TeamEvent | null = null;
  private readonly pulls: LayerPulls;
  private applying: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  /** Run after the next persist, before applying: sending a decision only once it is on disk. */
  private afterSave: (() => void)[] = [];
  private readonly cfgFile: string;
  private readonly stateFile: string;
  private readonly secretFile: string;
  private readonly keyFile: string;
  private readonly cursorFile: string;
  private readonly limits: Partial<NodeLimits>;

  constructor(
    private readonly agent: Agent,
    home: string,
    private readonly log: (m: string) => void,
    private readonly opts: { listenOverride?: string; limits?: Partial<NodeLimits> } = {},
  ) {
    this.cfgFile = path.join(home, 'team.json');
    this.stateFile = path.join(home, 'team-state.json');
    this.secretFile = path.join(home, 'team.secret');
    this.keyFile = path.join(home, 'team.key');
    this.cursorFile = path.join(home, 'team-nats.json');
    this.limits = { ...limitsFromEnv(process.env, log), ...(opts.limits ?? {}) };
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

  // ---- membership ------------------------------------------------------------------------------

  /** Rejoin the team this agent was in when it stopped. */
  async start(): Promise<void> {
    try {
      this.cfg = await readConfig(this.cfgFile);
      if (this.cfg) await this.connect(readSecretFile(this.secretFile), false);
    } catch (e) {
      this.log(`[team] could not rejoin the team from ${this.cfgFile}: ${(e as Error).message}`);
      await this.stop();
      this.cfg = null;
      this.state = null;
      // `agent start --listen` asked for this port: an agent that cannot serve it must not look started.
      if (this.opts.listenOverride && e instanceof StrataError && e.code === 'E_TEAM_LISTEN') throw e;
    }
  }

  async stop(): Promise<void> {
    await this.node?.stop();
    this.node = null;
  }

  /**
   * This membership's key pair and replicated state. An identity numbers its decisions from 1, so
   * it lives exactly as long as its state: a join makes a new key pair, and so does a restart that
   * finds the state lost (peers would take its new decisions for ones they have already seen).
   */
  private async identityAndState(cfg: TeamConfig, joining: boolean): Promise<{ identity: Identity; state: TeamState }> {
    let identity = joining ? null : loadIdentity(this.keyFile);
    const stateFor = async (id: Identity) => {
      let lost = !fs.existsSync(this.stateFile);
      const state = await loadTeamState(
        this.stateFile,
        id.id,
        new HlcClock(id.id),
        async (e) => {
          lost = true;
          const aside = `${this.stateFile}.broken-${Date.now()}`;
          await fsp.rename(this.stateFile, aside).catch(() => {});
          this.log(`[team] ${this.stateFile} was unreadable (${e.message}); kept it as ${aside}; peers will send what they hold`);
        },
        this.stateOptions(cfg, id),
      );
      return { state, lost };
    };
    let why = '';
    if (identity && identity.id === cfg.agentId) {
      const { state, lost } = await stateFor(identity);
      if (!lost) return { identity, state };
      why = 'its team state was lost';
    } else if (!joining) {
      // An agent from before keys (protocol 1) has team.json but no team.key, and a format-1 state.
      why = identity ? `its key (${identity.id}) is not the id in team.json (${cfg.agentId})` : `it has no key yet (${this.keyFile})`;
      const format = await savedFormat(this.stateFile);
      if (format !== null) why += `; its team state (format ${format}) starts over, peers send what they hold`;
    }
    if (!joining) await fsp.rm(this.stateFile, { force: true });
    identity = createIdentity(this.keyFile);
    if (!joining) this.log(`[team] ${why}: this agent takes a new key and id, ${identity.id}`);
    cfg.agentId = identity.id;
    return { identity, state: (await stateFor(identity)).state };
  }

  private stateOptions(cfg: TeamConfig, identity: Identity) {
    // What the team file names now: team.reload may add layers.
    let spec = cfg.spec;
    let keys = teamKeys(spec);
    return {
      maxOrigins: this.limits.maxOrigins,
      maxRegisters: this.limits.maxRegisters,
      maxSkewMs: this.limits.maxSkewMs,
      keeps: (k: string) => {
        if (cfg.spec !== spec) keys = teamKeys((spec = cfg.spec));
        return keys.has(k);
      },
      sign: (ev: Omit<TeamEvent, 'key' | 'sig'>) => identity.signEvent(cfg.spec.team, ev),
    };
  }

  /** Load the replicated state and start the node; a --listen address that cannot be served is E_TEAM_LISTEN. */
  private async connect(secret: Buffer, joining: boolean): Promise<void> {
    const cfg = this.cfg!;
    const before = cfg.agentId;
    const { identity, state } = await this.identityAndState(cfg, joining);
    if (!joining && cfg.agentId !== before) await writeConfig(this.cfgFile, cfg);
    this.state = state;
    this.applied = state.seenVector();
    const common = {
      identity,
      team: cfg.spec.team,
      key: deriveKey(secret, cfg.spec.team),
      state,
      log: this.log,
      limits: this.limits,
      hooks: {
        stateChanged: (reason: string) => void this.onStateChanged(reason),
        presence: () => this.presence(),
        presenceChanged: () => this.agent.emit('team-presence'),
        peersChanged: () => this.agent.emit('team-peers'),
        readChunk: (layer: string, digest: string, offset: number, length: number) => this.pulls.readChunk(layer, digest, offset, length),
      },
    };
    // NATS servers instead of Strata relays (nats/node.ts): the same service over JetStream.
    const nats = cfg.relays.some(isNatsUrl);
    const listen = nats ? null : this.listenSpec();
    this.node = nats
      ? new NatsNode({
          ...common,
          urls: seedsOf(cfg.relays, cfg.spec.relays),
          credentials: cfg.credentials ?? null,
          domain: cfg.spec.jetstreamDomain,
          cursorFile: this.cursorFile,
          joining,
          teamDigests: () => Object.fromEntries(Object.entries(cfg.spec.layers).map(([n, l]) => [n, l.digest])),
        })
      : new TeamNode({ ...common, listen: listen ? parseListen(listen) : undefined, connect: cfg.relays });
    try {
      await this.node.start();
    } catch (e) {
      throw listen ? listenError(listen, e) : e;
    }
    if (listen) this.log(`[team] accepting peers on ${parseListen(listen).host}:${this.node.port}`);
    void this.onStateChanged('start');
  }

  /** The --listen of `strata agent start` wins over the one given at join. */
  private listenSpec(): string | null {
    return this.opts.listenOverride ?? this.cfg?.listen ?? null;
  }

  listenPort(): number | null {
    return this.node && this.listenSpec() ? this.node.port : null;
  }

  async join(p: {
    url: string;
    secretFile: string;
    name?: string;
    teamFile: string;
    teamText?: string;
    listen?: string;
    credentials?: string;
  }): Promise<TeamStatus> {
    if (this.cfg) {
      throw new StrataError('E_TEAM_JOINED', `already in team "${this.cfg.spec.team}"`, 'Run "strata team leave" first.');
    }
    this.agent.views.assertOutside(p.secretFile, 'secret file');
    if (p.teamText === undefined) this.agent.views.assertOutside(p.teamFile, 'team file');
    let spec: TeamFile;
    try {
      spec = p.teamText !== undefined ? parseTeamFile(p.teamText, p.teamFile) : loadTeamFile(p.teamFile);
    } catch (e) {
      throw new StrataError('E_TEAM_INVALID', (e as Error).message, 'Fix the team file; nothing was changed.');
    }
    const urls = p.url === '-' ? [] : [p.url];
    urls.forEach(checkTeamUrl);
    if (p.credentials) this.agent.views.assertOutside(p.credentials, 'credentials file');
    let secret: Buffer;
    try {
      secret = readSecretFile(p.secretFile);
    } catch (e) {
      throw new StrataError('E_TEAM_SECRET', (e as Error).message, 'Keep the team secret in a file only you can read (chmod 600).');
    }
    if (p.listen) parseListen(p.listen);
    const name = p.name ?? os.userInfo().username;
    // The id is set from the key pair connect() makes.
    this.cfg = {
      format: 1,
      agentId: 'pending',
      name,
      teamFile: path.resolve(p.teamFile),
      spec,
      relays: urls,
      listen: p.listen ?? null,
      credentials: p.credentials ? path.resolve(p.credentials) : null,
      held: [],
    };
    try {
      await this.connect(secret, true);
    } catch (e) {
      // Nothing is saved until the node runs: a failed join leaves this agent out of any team.
      await this.stop();
      this.cfg = null;
      this.state = null;
      await fsp.rm(this.keyFile, { force: true });
      throw e;
    }
    await writeFileAtomic(this.secretFile, secret.toString('utf8'), 0o600);
    await writeConfig(this.cfgFile, this.cfg);
    this.agent.emit('team-joined');
    return this.status();
  }

  async leave(): Promise<{ left: string }> {
    const cfg = this.requireJoined();
    await this.stop();
    this.cfg = null;
    this.state = null;
    await fsp.rm(this.cfgFile, { force: true });
    await fsp.rm(this.stateFile, { force: true });
    await fsp.rm(this.secretFile, { force: true });
    await fsp.rm(this.keyFile, { force: true });
    await fsp.rm(this.cursorFile, { force: true });
    this.agent.emit('team-left');
    return { left: cfg.spec.team };
  }

  private requireJoined(): TeamConfig {
    if (!this.cfg || !this.state || !this.node) {
      throw new StrataError('E_TEAM_NOT_JOINED', 'this agent is not in a team', 'Join one with "strata team join URL --secret-file FILE".');
    }
    return this.cfg;
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
    await writeConfig(this.cfgFile, cfg);
    await this.applyNow('hold');
    return this.status();
  }

  /** Read the team file again (a digest brought up to date, say); the new layers, defaults and slots apply at once. */
  async reload(p: { teamText?: string }): Promise<TeamStatus> {
    const cfg = this.requireJoined();
    if (p.teamText === undefined) this.agent.views.assertOutside(cfg.teamFile, 'team file');
    let spec: TeamFile;
    try {
      spec = p.teamText !== undefined ? parseTeamFile(p.teamText, cfg.teamFile) : loadTeamFile(cfg.teamFile);
    } catch (e) {
      throw new StrataError('E_TEAM_INVALID', (e as Error).message, 'Fix the team file; nothing was changed.');
    }
    if (spec.team !== cfg.spec.team) {
      throw new StrataError(
        'E_TEAM_INVALID',
        `${cfg.teamFile} is the file of team "${spec.team}", this agent is in "${cfg.spec.team}"`,
        'Leave this team first to join the other one.',
      );
    }
    cfg.spec = spec;
    cfg.held = cfg.held.filter((n) => this.isTeamLayer(n));
    await writeConfig(this.cfgFile, cfg);
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
      await saveTeamState(this.stateFile, state);
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
      listen: port !== null ? `${parseListen(this.listenSpec()!).host}:${port}` : null,
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
}
