/**
 * The agent's side of the team: membership (team.json), the replicated state (team-state.json),
 * the transport (node.ts), and applying the team's decisions to this agent's views. Team layers
 * (those the team file lists) are relayed; personal layers stay local.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { Presence, RegisterWrite, TeamEvent, TeamFile, TeamPeerInfo, TeamStatus } from '../../protocol';
import { Agent } from '../agent';
import { StrataError } from '../../shared/errors';
import { writeFileAtomic } from '../atomic';
import { TeamNode, NodeLimits } from './node';
import { TeamState } from './state';
import { HlcClock } from './hlc';
import { deriveKey, readSecretFile } from './auth';
import { digestLayerDir } from './digest';
import { loadTeamFile, parseTeamFile } from './teamfile';

interface TeamConfig {
  format: 1;
  agentId: string;
  name: string;
  teamFile: string;
  spec: TeamFile;
  relays: string[];
  listen: string | null;
  held: string[];
}

export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new StrataError('E_BAD_REQUEST', `--listen ${spec}: expected HOST:PORT, like 127.0.0.1:7450`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}

export class TeamService {
  private cfg: TeamConfig | null = null;
  private state: TeamState | null = null;
  private node: TeamNode | null = null;
  private applied: Record<string, number> = {};
  private lastDecision: TeamEvent | null = null;
  private digests = new Map<string, string>();
  private pulling = new Map<string, { done: number; total: number }>();
  private applying: Promise<void> = Promise.resolve();
  private readonly cfgFile: string;
  private readonly stateFile: string;
  private readonly secretFile: string;

  constructor(
    private readonly agent: Agent,
    private readonly home: string,
    private readonly log: (m: string) => void,
    private readonly opts: { listenOverride?: string; limits?: Partial<NodeLimits> } = {},
  ) {
    this.cfgFile = path.join(home, 'team.json');
    this.stateFile = path.join(home, 'team-state.json');
    this.secretFile = path.join(home, 'team.secret');
  }

  get joined(): boolean {
    return this.cfg !== null;
  }

  isTeamLayer(name: string): boolean {
    return !!this.cfg && Object.prototype.hasOwnProperty.call(this.cfg.spec.layers, name);
  }

  private teamLayers(): string[] {
    return this.cfg ? Object.keys(this.cfg.spec.layers) : [];
  }

  // ---- lifecycle -------------------------------------------------------------------------------------

  async start(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.cfgFile, 'utf8');
    } catch {
      return; // not in a team
    }
    try {
      this.cfg = JSON.parse(text) as TeamConfig;
      await this.connect();
    } catch (e) {
      this.log(`[team] could not rejoin the team from ${this.cfgFile}: ${(e as Error).message}`);
      this.cfg = null;
    }
  }

  async stop(): Promise<void> {
    await this.node?.stop();
    this.node = null;
  }

  private async connect(): Promise<void> {
    const cfg = this.cfg!;
    const clock = new HlcClock(cfg.agentId);
    let state: TeamState;
    try {
      state = TeamState.fromJSON(cfg.agentId, clock, JSON.parse(await fsp.readFile(this.stateFile, 'utf8')));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        const aside = `${this.stateFile}.broken-${Date.now()}`;
        await fsp.rename(this.stateFile, aside).catch(() => {});
        this.log(`[team] ${this.stateFile} was unreadable (${(e as Error).message}); kept it as ${aside}; peers will send a snapshot`);
      }
      state = new TeamState(cfg.agentId, clock);
    }
    this.state = state;
    this.applied = state.seenVector();
    const key = deriveKey(readSecretFile(this.secretFile), cfg.spec.team);
    const listen = this.opts.listenOverride ?? cfg.listen;
    this.node = new TeamNode({
      id: cfg.agentId,
      team: cfg.spec.team,
      key,
      state,
      log: this.log,
      listen: listen ? parseListen(listen) : undefined,
      connect: cfg.relays,
      limits: this.opts.limits,
      hooks: {
        stateChanged: (reason) => void this.onStateChanged(reason),
        presence: () => this.presence(),
        presenceChanged: () => this.agent.emit('team-presence'),
        peersChanged: () => this.agent.emit('team-peers'),
        readChunk: (layer, digest, offset, length) => this.readChunk(layer, digest, offset, length),
      },
    });
    await this.node.start();
    if (listen) this.log(`[team] accepting peers on ${parseListen(listen).host}:${this.node.port}`);
    void this.onStateChanged('start');
  }

  listenPort(): number | null {
    return this.node && (this.opts.listenOverride ?? this.cfg?.listen) ? this.node.port : null;
  }

  async join(p: { url: string; secretFile: string; name?: string; teamFile: string; teamText?: string; listen?: string }): Promise<TeamStatus> {
    if (this.cfg) {
      throw new StrataError('E_BAD_REQUEST', `already in team "${this.cfg.spec.team}"`, 'Run "strata team leave" first.');
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
    for (const u of urls) {
      if (!/^wss?:\/\/[^\s/]+/.test(u)) throw new StrataError('E_BAD_REQUEST', `"${u}" is not a ws:// or wss:// address`, 'Give the relay address, like ws://127.0.0.1:7450.');
    }
    let secret: Buffer;
    try {
      secret = readSecretFile(p.secretFile);
    } catch (e) {
      throw new StrataError('E_TEAM_SECRET', (e as Error).message, 'Keep the team secret in a file only you can read (chmod 600).');
    }
    if (p.listen) parseListen(p.listen);
    const name = p.name ?? os.userInfo().username;
    const safe = name.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 24) || 'agent';
    const agentId = `${safe}-${crypto.randomBytes(4).toString('hex')}`;
    await writeFileAtomic(this.secretFile, secret.toString('utf8'), 0o600);
    this.cfg = { format: 1, agentId, name, teamFile: path.resolve(p.teamFile), spec, relays: urls, listen: p.listen ?? null, held: [] };
    await this.saveConfig();
    await this.connect();
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
    this.agent.emit('team-left');
    return { left: cfg.spec.team };
  }

  private requireJoined(): TeamConfig {
    if (!this.cfg || !this.state || !this.node) {
      throw new StrataError('E_TEAM_NOT_JOINED', 'this agent is not in a team', 'Join one with "strata team join URL --secret-file FILE".');
    }
    return this.cfg;
  }

  private async saveConfig(): Promise<void> {
    await writeFileAtomic(this.cfgFile, JSON.stringify(this.cfg, null, 2) + '\n', 0o600);
  }

  private async persist(): Promise<void> {
    if (this.state) await writeFileAtomic(this.stateFile, JSON.stringify(this.state.toJSON()) + '\n', 0o600);
  }

  // ---- decisions -------------------------------------------------------------------------------------

  /** Activate, deactivate or swap, splitting team layers (relayed) from personal ones (local). */
  async switchLayers(
    op: { activate?: string[]; deactivate?: string[]; swap?: [string, string]; force?: boolean },
    opts: { whenIdle?: boolean; timeoutMs?: number } = {},
  ): Promise<{ active: string[]; decision?: string }> {
    const teamOf = (ns: string[] | undefined) => (ns ?? []).filter((n) => this.isTeamLayer(n));
    const personal = (ns: string[] | undefined) => (ns ?? []).filter((n) => !this.isTeamLayer(n));
    if (op.swap && this.isTeamLayer(op.swap[0]) !== this.isTeamLayer(op.swap[1])) {
      throw new StrataError('E_BAD_REQUEST', `cannot swap team layer and personal layer (${op.swap.join(' → ')}) in one step`, 'Use activate and deactivate.');
    }
    const teamSwap = op.swap && this.isTeamLayer(op.swap[0]) ? op.swap : undefined;
    let result: { active: string[]; decision?: string } = { active: this.agent.switch.active() };
    if (op.swap && !teamSwap) result = await this.agent.switch.swap(op.swap[0], op.swap[1]);
    if (personal(op.activate).length) result = await this.agent.switch.activate(personal(op.activate));
    if (personal(op.deactivate).length) result = await this.agent.switch.deactivate(personal(op.deactivate), op.force ?? false);
    const ta = teamOf(op.activate);
    const td = teamOf(op.deactivate);
    if (!ta.length && !td.length && !teamSwap) return result;
    const cfg = this.requireJoined();
    // Activating one layer of a swap slot switches its siblings off: they are affected too.
    const slotMates = (n: string) => Object.values(cfg.spec.slots).find((members) => members.includes(n)) ?? [n];
    const affected = [...new Set([...ta, ...td, ...(teamSwap ?? [])].flatMap(slotMates))];
    if (opts.whenIdle) await this.waitIdle(affected, opts.timeoutMs ?? 60000);
    const writes = this.state!.writesFor(cfg.spec, { activate: ta, deactivate: td, swap: teamSwap });
    if (!writes.length) return { active: this.agent.switch.active() }; // the team already has it so
    const ev = await this.decide(writes);
    return { active: this.agent.switch.active(), decision: `${ev.origin}:${ev.seq}` };
  }

  private async decide(writes: RegisterWrite[], reverts?: string): Promise<TeamEvent> {
    const cfg = this.requireJoined();
    const ev = this.node!.decide(writes, cfg.name, os.hostname(), reverts, cfg.spec);
    this.lastDecision = ev;
    await this.applyNow('decision');
    return ev;
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
    return { decision: `${ev.origin}:${ev.seq}`, active: this.agent.switch.active() };
  }

  async hold(name: string, hold: boolean): Promise<TeamStatus> {
    const cfg = this.requireJoined();
    if (!this.isTeamLayer(name)) throw new StrataError('E_LAYER_UNKNOWN', `"${name}" is not a team layer of ${cfg.spec.team}`, `The team file ${cfg.teamFile} lists the team layers.`);
    cfg.held = hold ? [...new Set([...cfg.held, name])] : cfg.held.filter((n) => n !== name);
    await this.saveConfig();
    await this.applyNow('hold');
    return this.status();
  }

  private async waitIdle(layers: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = this.busyPeers(layers);
      if (!busy.length) return;
      if (Date.now() >= deadline) {
        throw new StrataError('E_TEAM_BUSY', `teammates still have files of ${layers.join(', ')} open: ${busy.join('; ')}`, 'Try again later, or switch without --when-idle.');
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private busyPeers(layers: string[]): string[] {
    const out: string[] = [];
    const local = this.agent.switch.busy(layers);
    if (local.length) out.push(`this agent (${local.join(', ')})`);
    for (const p of this.node?.presences.values() ?? []) {
      const b = p.busy.filter((n) => layers.includes(n));
      if (b.length && Date.now() - p.at < 3 * (this.node?.limits.heartbeatMs ?? 10000)) out.push(`${p.user}@${p.host} (${b.join(', ')})`);
    }
    return out;
  }

  // ---- applying the team's state -------------------------------------------------------------------------

  private onStateChanged(reason: string): void {
    this.applyNow(reason).catch((e) => this.log(`[team] applying the team's state failed: ${(e as Error).message}`));
  }

  /**
   * Persist, then apply the registers to the local views, then announce what is applied. Runs are
   * serialized (a persist never overtakes a newer one) and coalesced: a run reads the newest
   * state, so requests made while one is queued need no run of their own.
   */
  private queued: Promise<void> | null = null;
  private applyNow(reason: string): Promise<void> {
    if (this.queued) return this.queued;
    const run = async () => {
      this.queued = null;
      const cfg = this.cfg;
      const state = this.state;
      if (!cfg || !state) return;
      await this.persist();
      const seen = state.seenVector();
      const desired = state.desiredActive(cfg.spec);
      const { missing } = await this.agent.switch.applyTeamSet(this.teamLayers(), desired, cfg.held, `team-${reason}`);
      this.applied = seen;
      await this.refreshDigests();
      this.node?.announce();
      this.agent.emit(`team-${reason}`);
      for (const m of missing) void this.pull(m);
    };
    this.applying = this.applying.then(run, run);
    this.queued = this.applying;
    return this.applying;
  }

  private async refreshDigests(): Promise<void> {
    for (const n of this.teamLayers()) {
      if (!this.agent.catalog.has(n)) this.digests.delete(n);
      else if (!this.digests.has(n)) this.digests.set(n, await digestLayerDir(this.agent.store.dir(n)));
    }
  }

  private presence(): Omit<Presence, 'agent' | 'pseq' | 'at'> {
    const cfg = this.cfg;
    const team = this.teamLayers();
    return {
      user: cfg?.name ?? os.userInfo().username,
      host: os.hostname(),
      active: this.agent.switch.active(),
      held: cfg?.held ?? [],
      applied: this.applied,
      busy: this.agent.switch.busy(team),
      has: Object.fromEntries([...this.digests.entries()].filter(([n]) => team.includes(n))),
    };
  }

  // ---- pulling layers -----------------------------------------------------------------------------------------

  private async readChunk(layer: string, digest: string, offset: number, length: number): Promise<{ total: number; data: Buffer } | null> {
    if (!this.isTeamLayer(layer) || this.digests.get(layer) !== digest) return null;
    const dir = path.join(this.home, 'exports');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, `${layer}-${digest.replace(/^sha256:/, '').slice(0, 16)}.tar.gz`);
    if (!fs.existsSync(file)) await this.agent.layers.exportTo(layer, file);
    const fh = await fsp.open(file, 'r');
    try {
      const total = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.max(0, Math.min(length, total - offset)));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      return { total, data: buf.subarray(0, bytesRead) };
    } finally {
      await fh.close();
    }
  }

  /** Fetch a missing team layer from a connected peer that has it; resumable; verified. */
  private async pull(layer: string): Promise<void> {
    const cfg = this.cfg;
    if (!cfg || !this.node || this.pulling.has(layer)) return;
    const digest = cfg.spec.layers[layer]?.digest;
    if (!digest) return;
    this.pulling.set(layer, { done: 0, total: 0 });
    const dir = path.join(this.home, 'pulls');
    await fsp.mkdir(dir, { recursive: true });
    const part = path.join(dir, `${layer}-${digest.slice(7, 23)}.tar.gz.part`);
    try {
      for (let attempt = 0; attempt < 20 && this.cfg; attempt++) {
        const source = [...this.node.presences.values()].find((p) => p.has[layer] === digest && this.node!.reachable(p.agent));
        if (!source) {
          this.agent.progress(`pull ${layer}`, `waiting for a connected teammate that has ${layer} (${digest.slice(0, 19)}…)`);
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        const offset = fs.existsSync(part) ? fs.statSync(part).size : 0;
        try {
          await this.node.pullFrom(source.agent, layer, digest, offset, async (off, data, total) => {
            const fh = await fsp.open(part, off === 0 ? 'w' : 'r+');
            try {
              await fh.write(data, 0, data.length, off);
            } finally {
              await fh.close();
            }
            this.pulling.set(layer, { done: off + data.length, total });
            this.agent.progress(`pull ${layer}`, `from ${source.user}@${source.host}`, off + data.length, total);
          });
        } catch (e) {
          this.log(`[team] pulling ${layer} from ${source.agent} stopped: ${(e as Error).message}; will resume`);
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const archive = part.replace(/\.part$/, '');
        await fsp.rename(part, archive);
        const spec = await this.agent.layers.importFrom(archive);
        const got = await digestLayerDir(this.agent.store.dir(spec.name));
        await fsp.rm(archive, { force: true });
        if (spec.name !== layer || got !== digest) {
          await this.agent.layers.remove(spec.name).catch(() => {});
          this.log(`[team] ${layer} from ${source.agent} did not match the team file (${got}); discarded`);
          continue;
        }
        this.agent.progress(`pull ${layer}`, 'verified and imported');
        this.pulling.delete(layer);
        await this.applyNow('pulled');
        return;
      }
      this.log(`[team] giving up on pulling ${layer}`);
    } finally {
      this.pulling.delete(layer);
    }
  }

  // ---- reporting --------------------------------------------------------------------------------------------

  status(): TeamStatus {
    const cfg = this.cfg;
    const state = this.state;
    const node = this.node;
    if (!cfg || !state || !node) return { joined: false };
    const team = this.teamLayers();
    const desired = state.desiredActive(cfg.spec);
    const driftOf = (active: string[]): string[] => {
      const a = active.filter((n) => team.includes(n));
      return [...a.filter((n) => !desired.includes(n)).map((n) => `+${n}`), ...desired.filter((n) => !a.includes(n)).map((n) => `-${n}`)];
    };
    const connected = new Set(node.connectedAgents());
    const stale = 3 * node.limits.heartbeatMs;
    const peers: TeamPeerInfo[] = [...node.presences.values()].map((p) => ({
      agent: p.agent,
      user: p.user,
      host: p.host,
      connection: connected.has(p.agent) ? 'connected' : Date.now() - p.at < stale ? 'via-relay' : 'gone',
      active: p.active,
      held: p.held,
      busy: p.busy,
      drift: p.active ? driftOf(p.active) : [],
      lastSeen: p.at,
    }));
    const out: TeamStatus = {
      joined: true,
      team: cfg.spec.team,
      agent: cfg.agentId,
      relays: node.peers().filter((p) => p.direction === 'out').map((p) => ({ url: p.url ?? '', state: p.state })),
      listen: this.listenPort() !== null ? `${parseListen(this.opts.listenOverride ?? cfg.listen!).host}:${this.listenPort()}` : null,
      teamFile: cfg.teamFile,
      desired,
      drift: driftOf(this.agent.switch.active()),
      held: cfg.held,
      peers,
      pulling: [...this.pulling.entries()].map(([layer, p]) => ({ layer, ...p })),
    };
    if (this.lastDecision) {
      const ev = this.lastDecision;
      const agents = [...node.presences.values()].filter((p) => p.active !== null && Date.now() - p.at < stale);
      const applied = 1 + agents.filter((p) => (p.applied[ev.origin] ?? 0) >= ev.seq).length;
      out.lastDecision = { id: `${ev.origin}:${ev.seq}`, applied, of: agents.length + 1 };
    }
    return out;
  }

  history(): TeamEvent[] {
    this.requireJoined();
    return this.state!.history();
  }
}
