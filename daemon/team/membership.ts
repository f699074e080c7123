/**
 * The agent's membership of a team: team.json and the files beside it, the key pair, the
 * replicated state loaded for it, and the node (relay or NATS) that keeps it in step; joining,
 * rejoining at start, leaving. What the team decides, and applying it, is service.ts.
 */
import * as os from 'os';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { TeamEvent, TeamFile, isNatsUrl } from '../../protocol';
import { Agent } from '../agent';
import { StrataError } from '../../shared/errors';
import { writeFileAtomic } from '../atomic';
import { NodeHooks, TeamNode } from './node';
import { ReadChunk } from './chunks';
import { TeamTransport, checkTeamUrl } from './transport';
import { NatsNode } from './nats/node';
import { seedsOf } from './nats/names';
import { NodeLimits, limitsFromEnv } from './limits';
import { Identity, createIdentity, loadIdentity } from './identity';
import { teamKeys } from './teamset';
import { TeamState } from './state';
import { loadTeamState, savedFormat } from './statefile';
import { HlcClock } from './hlc';
import { deriveKey, readSecretFile } from './auth';
import { loadTeamFile, parseTeamFile } from './teamfile';
import { TeamConfig, listenError, parseListen, readConfig, writeConfig } from './config';

/** The service's side of the node it starts: applying the state, presence, serving pulls. */
export interface MembershipHooks extends Pick<NodeHooks, 'stateChanged' | 'presence'> {
  /** The state is loaded, before the node starts. */
  loaded(state: TeamState): void;
  readChunk: ReadChunk;
}

export interface JoinParams {
  url: string;
  secretFile: string;
  name?: string;
  teamFile: string;
  teamText?: string;
  listen?: string;
  credentials?: string;
}

/** The team file at `file` (never one in a view), or `text` when the caller read it; E_TEAM_INVALID when it is not one. */
export function readTeamFile(agent: Agent, file: string, text?: string): TeamFile {
  if (text === undefined) agent.views.assertOutside(file, 'team file');
  try {
    return text !== undefined ? parseTeamFile(text, file) : loadTeamFile(file);
  } catch (e) {
    throw new StrataError('E_TEAM_INVALID', (e as Error).message, 'Fix the team file; nothing was changed.');
  }
}

export class TeamMembership {
  cfg: TeamConfig | null = null;
  state: TeamState | null = null;
  node: TeamTransport | null = null;
  readonly cfgFile: string;
  readonly stateFile: string;
  private readonly secretFile: string;
  private readonly keyFile: string;
  private readonly cursorFile: string;
  private readonly limits: Partial<NodeLimits>;

  constructor(
    private readonly agent: Agent,
    home: string,
    private readonly log: (m: string) => void,
    private readonly hooks: MembershipHooks,
    private readonly opts: { listenOverride?: string; limits?: Partial<NodeLimits> } = {},
  ) {
    this.cfgFile = path.join(home, 'team.json');
    this.stateFile = path.join(home, 'team-state.json');
    this.secretFile = path.join(home, 'team.secret');
    this.keyFile = path.join(home, 'team.key');
    this.cursorFile = path.join(home, 'team-nats.json');
    this.limits = { ...limitsFromEnv(process.env, log), ...(opts.limits ?? {}) };
  }

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
    this.hooks.loaded(state);
    const common = {
      identity,
      team: cfg.spec.team,
      key: deriveKey(secret, cfg.spec.team),
      state,
      log: this.log,
      limits: this.limits,
      hooks: {
        stateChanged: (reason: string) => this.hooks.stateChanged(reason),
        presence: () => this.hooks.presence(),
        presenceChanged: () => this.agent.emit('team-presence'),
        peersChanged: () => this.agent.emit('team-peers'),
        readChunk: this.hooks.readChunk,
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
    this.hooks.stateChanged('start');
  }

  /** The --listen of `strata agent start` wins over the one given at join. */
  listenSpec(): string | null {
    return this.opts.listenOverride ?? this.cfg?.listen ?? null;
  }

  listenPort(): number | null {
    return this.node && this.listenSpec() ? this.node.port : null;
  }

  async join(p: JoinParams): Promise<void> {
    if (this.cfg) {
      throw new StrataError('E_TEAM_JOINED', `already in team "${this.cfg.spec.team}"`, 'Run "strata team leave" first.');
    }
    this.agent.views.assertOutside(p.secretFile, 'secret file');
    const spec = readTeamFile(this.agent, p.teamFile, p.teamText);
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

  requireJoined(): TeamConfig {
    if (!this.cfg || !this.state || !this.node) {
      throw new StrataError('E_TEAM_NOT_JOINED', 'this agent is not in a team', 'Join one with "strata team join URL --secret-file FILE".');
    }
    return this.cfg;
  }
}
