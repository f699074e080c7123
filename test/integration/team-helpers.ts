/** Shared by the team suites: waiting for a condition, a relay child process, a secret file, the team fixture. */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn } from 'child_process';
import { CLI, Env, makeEnv, writeTree } from './helpers';
import { Maybe, eventually as waitFor } from '../wait';
import { deriveKey } from '../../daemon/team/auth';
import { digestLayerDir } from '../../daemon/team/digest';
import { TeamStatus } from '../../protocol';

/** The secret writeSecret writes unless told otherwise. */
export const SECRET = 'correct horse battery staple 2026';

/** The team suites wait longer: several agents share two cores. */
export function eventually<T>(what: string, fn: () => Maybe<T> | Promise<Maybe<T>>, ms = 30000): Promise<T> {
  return waitFor(what, fn, ms);
}

export interface Relay {
  url: string;
  proc: ChildProcess;
  stop(): void;
}

export async function startRelay(secretFile: string, extra: string[] = []): Promise<Relay> {
  const proc = spawn(process.execPath, [CLI, 'relay', '--listen', '127.0.0.1:0', '--secret-file', secretFile, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (err += String(d)));
  const url = await eventually('the relay to print its address', () => {
    if (proc.exitCode !== null) throw new Error(`relay exited: ${err}`);
    const m = /"url":\s*"([^"]+)"/.exec(out);
    return m ? m[1] : null;
  });
  return { url, proc, stop: () => proc.kill('SIGTERM') };
}

export function writeSecret(dir: string, secret = SECRET): string {
  const f = path.join(dir, 'team.secret');
  fs.writeFileSync(f, secret + '\n', { mode: 0o600 });
  return f;
}

/** A file's text, or null where it cannot be read (not there yet, a view mid-switch). */
export function readText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/** The content digest of each of `names` in the layer store of `home` (an agent's, or a LayerStore's). */
export async function layerDigests(home: string, names: string[]): Promise<Record<string, { digest: string }>> {
  const out: Record<string, { digest: string }> = {};
  for (const n of names) out[n] = { digest: await digestLayerDir(path.join(home, 'layers', n)) };
  return out;
}

export interface AgentSetUp {
  /** Its folder's prefix, for makeEnv. */
  prefix: string;
  /** The files of its base folder. */
  base: Record<string, string>;
  /** Layers it creates before joining: name -> the `layer create` arguments after the name. */
  layers?: Record<string, string[]>;
}

/** The usual team file fields; `team` defaults to acme and `relays` to the fixture's url. */
export interface TeamFileFields {
  team?: string;
  relays?: string[];
  layers: Record<string, { digest: string }>;
  defaults?: string[];
  slots?: Record<string, string[]>;
}

/**
 * One team suite's set-up: a shared folder with the team secret, the server agents join (a relay
 * by startTeam, or a NATS server the suite sets `url` to), agents with views, the team file they
 * join with; cleanup() ends all of them.
 */
export class TeamFixture {
  readonly dir: string;
  readonly secret: string;
  readonly agents: Env[] = [];
  relay?: Relay;
  /** Where agents join. */
  url = '';
  /** Ends the server(s) agents join; a NATS suite sets its own. */
  stopServer: () => unknown = () => this.relay?.stop();
  readonly teamFile: string;

  constructor(prefix: string) {
    this.dir = fs.mkdtempSync(`/tmp/${prefix}`);
    this.secret = writeSecret(this.dir);
    this.teamFile = path.join(this.dir, 'strata.team.json');
  }

  /** Start a relay (with `args`) for the agents to join. */
  async startRelay(args: string[] = []): Promise<Relay> {
    this.relay = await startRelay(this.secret, args);
    this.url = this.relay.url;
    return this.relay;
  }

  /** The key the team secret gives `team`. */
  key(team: string): Buffer {
    return deriveKey(Buffer.from(SECRET), team);
  }

  /** A new agent (ended by cleanup) with its base files, its layers and a view of its base. */
  async agent(s: AgentSetUp): Promise<Env> {
    const e = makeEnv(s.prefix);
    this.agents.push(e);
    writeTree(e.base, s.base);
    for (const [name, args] of Object.entries(s.layers ?? {})) await e.ok('layer', 'create', name, ...args);
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    return e;
  }

  /** Write the team file (format 1). */
  writeTeamFile(f: TeamFileFields): void {
    const file = {
      format: 1,
      team: f.team ?? 'acme',
      relays: f.relays ?? [this.url],
      layers: f.layers,
      defaults: f.defaults ?? [],
      slots: f.slots ?? {},
    };
    fs.writeFileSync(this.teamFile, JSON.stringify(file, null, 2));
  }

  /** `team join` with the fixture's secret and team file, as `name`, at `url` (the fixture's). */
  join(e: Env, name: string, extra: string[] = [], url = this.url): Promise<string> {
    return e.ok('team', 'join', url, '--secret-file', this.secret, '--team-file', this.teamFile, '--name', name, ...extra);
  }

  /** Wait until `e` lists a peer whose user is `user`. */
  async sees(e: Env, user: string): Promise<void> {
    await eventually(`the agents to see ${user}`, async () =>
      (await e.json<TeamStatus>('team', 'status')).peers?.some((p) => p.user === user),
    );
  }

  /** End the agents, the server, and the folder (kept with STRATA_KEEP_TEST_DIRS). */
  async cleanup(): Promise<void> {
    for (const e of this.agents) await e.cleanup();
    await this.stopServer();
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TeamFixture whose agents join a new relay (started with `relayArgs`). */
export async function startTeam(prefix: string, relayArgs: string[] = []): Promise<TeamFixture> {
  const t = new TeamFixture(prefix);
  await t.startRelay(relayArgs);
  return t;
}
