#!/usr/bin/env node
/**
 * `strata`: the command line. Every command talks to the agent over its socket (starting it in the
 * background when needed, except `agent ...`). State-printing commands take --json. Errors go to
 * stderr as "strata: CODE: message" plus what to do, with exit status 1 (2 for usage errors).
 */
import * as path from 'path';
import { spawn } from 'child_process';
import * as fs from 'fs';
import { AgentStatus, LayerInfo, TEAM_FILE, TeamEvent, TeamStatus, ViewInfo } from '../protocol';
import { runRelay } from '../daemon/team/relay';
import { AgentClient, connectOrStart, logFile } from '../shared/client';
import { StrataError } from '../shared/errors';
import { findSocket, pidAlive, strataHome } from '../shared/paths';

const USAGE = `usage: strata COMMAND [ARGS] [--json]

  agent start [--foreground]        start the agent for $STRATA_HOME
  agent stop                        unmount every view and stop the agent
  status                            agent, active layers, views

  layer create NAME --from DIR [--priority N] [--version V] [--description TEXT]
  layer list | show NAME | rm NAME
  layer map NAME ORIGINAL DESTINATION     redirect view path ORIGINAL into the layer
  layer unmap NAME ORIGINAL
  layer exclude NAME PATH                 PATH always passes through to the base
  layer hide NAME PATH                    PATH is hidden while the layer is active
  layer reset NAME                        discard the layer's writable sublayer
  layer export NAME FILE | import FILE

  view add BASE [--at MOUNTPOINT]         serve BASE in place, or at MOUNTPOINT
  view list | rm BASE

  activate NAME... [--when-idle [--timeout SECONDS]]
  deactivate NAME... [--force]            refuses while files of the layer are open
  swap OLD NEW                            replace OLD by NEW in one step

  team join URL --secret-file FILE [--name NAME] [--team-file FILE] [--listen HOST:PORT]
                                          URL "-" joins without a relay (others dial this agent)
  team leave | status | history
  team revert ID                          undo a team decision (IDs from "team history")
  team hold NAME | follow NAME            keep a team layer as it is here / follow the team again
  agent start --listen HOST:PORT          also accept teammates' agents
  relay --listen HOST:PORT --secret-file FILE [--team TEAM] [--state-file FILE]
        [--tls-cert PEM --tls-key PEM]    run a standalone relay (no FUSE); wss:// with a certificate
`;

class UsageError extends Error {}

interface Parsed {
  args: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--from', '--priority', '--version', '--description', '--at', '--secret-file', '--name', '--team-file', '--listen', '--timeout', '--team', '--state-file', '--tls-cert', '--tls-key']);

function parse(argv: string[]): Parsed {
  const args: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (VALUE_FLAGS.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`${name} needs a value`);
        flags.set(name, v);
      } else if (['--json', '--force', '--foreground', '--help', '--when-idle'].includes(name)) {
        flags.set(name, true);
      } else {
        throw new UsageError(`unknown option ${a}`);
      }
    } else {
      args.push(a);
    }
  }
  return { args, flags };
}

function need(args: string[], n: number, what: string): void {
  if (args.length !== n) throw new UsageError(`expected ${what}`);
}

function str(flags: Map<string, string | true>, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function num(flags: Map<string, string | true>, name: string): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`${name} must be an integer, got "${v}"`);
  return n;
}

// ---- output --------------------------------------------------------------------------------------

function layerLine(l: LayerInfo): string {
  return `${l.active ? '*' : ' '} ${l.name.padEnd(20)} ${String(l.version).padEnd(12)} priority ${String(l.priority).padEnd(6)} ${l.mappings.length} mapping(s)`;
}

function showLayer(l: LayerInfo): string {
  const out = [
    `${l.name} ${l.version}${l.active ? ' (active)' : ''}`,
    `  priority:    ${l.priority}`,
    `  description: ${l.description}`,
    `  writable:    ${l.writableBytes} bytes`,
    '  mappings:',
    ...l.mappings.map((m) => `    ${m.original} -> ${m.destination}`),
  ];
  if (l.excludes.length) out.push('  excludes:', ...l.excludes.map((e) => `    ${e}`));
  if (l.deletes.length) out.push('  hidden:', ...l.deletes.map((d) => `    ${d}`));
  return out.join('\n');
}

function viewLine(v: ViewInfo): string {
  return `${v.base}${v.inPlace ? ' (in place)' : ` at ${v.mountpoint}`} ${v.state}${v.error ? `: ${v.error}` : ''}`;
}

function statusText(s: AgentStatus): string {
  return [
    `agent pid ${s.pid}, home ${s.home}`,
    `active: ${s.active.length ? s.active.join(', ') : '(none)'}`,
    `layers: ${s.layers.length}`,
    'views:',
    ...(s.views.length ? s.views.map((v) => '  ' + viewLine(v)) : ['  (none)']),
  ].join('\n');
}

// ---- commands ------------------------------------------------------------------------------------

async function run(argv: string[]): Promise<number> {
  const { args, flags } = parse(argv);
  const json = flags.has('--json');
  if (flags.has('--help') || args.length === 0) {
    process.stdout.write(USAGE);
    return args.length === 0 && !flags.has('--help') ? 2 : 0;
  }
  const home = strataHome();
  const sock = findSocket(home);
  const agentScript = path.join(__dirname, 'agent.js');
  const print = (value: unknown, text: string): void => {
    process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text + '\n');
  };

  const [cmd, sub, ...rest] = args;
  if (cmd === 'relay') {
    const listen = str(flags, '--listen');
    const secretFile = str(flags, '--secret-file');
    if (!listen || !secretFile) throw new UsageError('relay needs --listen HOST:PORT and --secret-file FILE');
    const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
    const cert = str(flags, '--tls-cert');
    const tlsKey = str(flags, '--tls-key');
    if (!!cert !== !!tlsKey) throw new UsageError('--tls-cert and --tls-key go together');
    let relay: Awaited<ReturnType<typeof runRelay>>;
    try {
      const tls = cert && tlsKey ? { cert: fs.readFileSync(cert), key: fs.readFileSync(tlsKey) } : undefined;
      relay = await runRelay({ listen, secretFile: path.resolve(secretFile), team: str(flags, '--team'), stateFile: str(flags, '--state-file'), tls, log });
    } catch (e) {
      if (e instanceof StrataError) throw e; // E_TEAM_LISTEN, or a malformed --listen
      throw new StrataError('E_TEAM_SECRET', (e as Error).message, 'Check --listen and the secret file (chmod 600).');
    }
    print({ url: relay.url, id: relay.node.id }, `relay ${relay.node.id} listening on ${relay.url}`);
    await new Promise<void>((res) => {
      const stop = () => void relay.stop().then(res);
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  }
  if (cmd === 'agent') {
    if (sub === 'start') {
      const listen = str(flags, '--listen');
      const agentEnv = { ...process.env, STRATA_HOME: home, ...(listen ? { STRATA_LISTEN: listen } : {}) };
      if (flags.has('--foreground')) {
        const child = spawn(process.execPath, [agentScript], { stdio: 'inherit', env: agentEnv });
        const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
        process.on('SIGINT', forward('SIGINT'));
        process.on('SIGTERM', forward('SIGTERM'));
        return new Promise((res) => child.on('exit', (code) => res(code ?? 1)));
      }
      if (listen) {
        const running = await connectOrStart({ home, socket: sock, agentScript, start: false }).catch(() => null);
        if (running) {
          running.close();
          throw new StrataError('E_BAD_REQUEST', 'the agent is already running without --listen', 'Run "strata agent stop" first, then start it with --listen.');
        }
      }
      const c = await connectOrStart({ home, socket: sock, agentScript, start: true, env: agentEnv });
      const s = await c.call('status', {});
      const t = await c.call('team.status', {});
      c.close();
      print({ ...s, team: t }, `agent running (pid ${s.pid}); log: ${logFile(home)}${t.listen ? `; accepting teammates on ws://${t.listen}` : ''}`);
      return 0;
    }
    if (sub === 'stop') {
      let c: AgentClient;
      try {
        c = await connectOrStart({ home, socket: sock, agentScript, start: false });
      } catch {
        print({ stopped: false, running: false }, 'agent is not running');
        return 0;
      }
      const s = await c.call('status', {});
      await c.call('agent.stop', {}).catch(() => {});
      c.close();
      // Wait until the process is gone, so the mounts are released when we return.
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline && pidAlive(s.pid)) await new Promise((r) => setTimeout(r, 50));
      if (pidAlive(s.pid)) throw new StrataError('E_AGENT_UNAVAILABLE', `agent pid ${s.pid} did not stop in 20 s`, `See ${logFile(home)}; "kill ${s.pid}" stops it (the next start clears its mounts).`);
      print({ stopped: true, pid: s.pid }, `agent stopped (pid ${s.pid})`);
      return 0;
    }
    throw new UsageError('expected "agent start" or "agent stop"');
  }

  const c = await connectOrStart({ home, socket: sock, agentScript, start: true });
  try {
    switch (cmd) {
      case 'status': {
        need(args, 1, 'no arguments');
        const s = await c.call('status', {});
        print(s, statusText(s));
        return 0;
      }
      case 'layer':
        return await layerCommand(c, sub, rest, flags, print);
      case 'view': {
        if (sub === 'add') {
          need(rest, 1, 'view add BASE [--at MOUNTPOINT]');
          const at = str(flags, '--at');
          const v = await c.call('view.add', at ? { base: path.resolve(rest[0]), at: path.resolve(at) } : { base: path.resolve(rest[0]) });
          print(v, `view ${viewLine(v)}`);
          return 0;
        }
        if (sub === 'list') {
          const vs = await c.call('view.list', {});
          print(vs, vs.length ? vs.map(viewLine).join('\n') : '(no views)');
          return 0;
        }
        if (sub === 'rm') {
          need(rest, 1, 'view rm BASE');
          const r = await c.call('view.rm', { base: path.resolve(rest[0]) });
          print(r, `view of ${r.removed} removed`);
          return 0;
        }
        throw new UsageError('expected view add|list|rm');
      }
      case 'activate': {
        const names = args.slice(1);
        if (!names.length) throw new UsageError('expected activate NAME... [--when-idle [--timeout SECONDS]]');
        const timeout = num(flags, '--timeout');
        const r = await c.call('activate', { names, whenIdle: flags.has('--when-idle'), ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}) });
        print(r, `active: ${r.active.join(', ') || '(none)'}${r.decision ? ` (team decision ${r.decision})` : ''}`);
        return 0;
      }
      case 'team':
        return await teamCommand(c, sub, rest, flags, print);
      case 'deactivate': {
        const names = args.slice(1);
        if (!names.length) throw new UsageError('expected deactivate NAME... [--force]');
        const r = await c.call('deactivate', { names, force: flags.has('--force') });
        print(r, `active: ${r.active.join(', ') || '(none)'}`);
        return 0;
      }
      case 'swap': {
        need(args, 3, 'swap OLD NEW');
        const r = await c.call('swap', { old: args[1], new: args[2] });
        print(r, `active: ${r.active.join(', ') || '(none)'}`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } finally {
    c.close();
  }
}

async function layerCommand(
  c: AgentClient,
  sub: string | undefined,
  rest: string[],
  flags: Map<string, string | true>,
  print: (v: unknown, t: string) => void,
): Promise<number> {
  switch (sub) {
    case 'create': {
      need(rest, 1, 'layer create NAME --from DIR');
      const from = str(flags, '--from');
      if (!from) throw new UsageError('layer create needs --from DIR');
      process.stderr.write(`capturing ${path.resolve(from)} as layer ${rest[0]}...\n`);
      const l = await c.call('layer.create', {
        name: rest[0], from: path.resolve(from), priority: num(flags, '--priority'), version: str(flags, '--version'), description: str(flags, '--description'),
      });
      print(l, `created layer ${l.name} ${l.version}`);
      return 0;
    }
    case 'list': {
      const ls = await c.call('layer.list', {});
      print(ls, ls.length ? ls.map(layerLine).join('\n') : '(no layers)');
      return 0;
    }
    case 'show': {
      need(rest, 1, 'layer show NAME');
      const l = await c.call('layer.show', { name: rest[0] });
      print(l, showLayer(l));
      return 0;
    }
    case 'rm': {
      need(rest, 1, 'layer rm NAME');
      const r = await c.call('layer.rm', { name: rest[0] });
      print(r, `removed layer ${r.removed}`);
      return 0;
    }
    case 'map': {
      need(rest, 3, 'layer map NAME ORIGINAL DESTINATION');
      const l = await c.call('layer.map', { name: rest[0], original: rest[1], destination: rest[2] });
      print(l, showLayer(l));
      return 0;
    }
    case 'unmap': {
      need(rest, 2, 'layer unmap NAME ORIGINAL');
      const l = await c.call('layer.unmap', { name: rest[0], original: rest[1] });
      print(l, showLayer(l));
      return 0;
    }
    case 'exclude':
    case 'hide': {
      need(rest, 2, `layer ${sub} NAME PATH`);
      const l = await c.call(sub === 'exclude' ? 'layer.exclude' : 'layer.hide', { name: rest[0], path: rest[1] });
      print(l, showLayer(l));
      return 0;
    }
    case 'reset': {
      need(rest, 1, 'layer reset NAME');
      const l = await c.call('layer.reset', { name: rest[0] });
      print(l, `reset layer ${l.name}: writable sublayer discarded`);
      return 0;
    }
    case 'export': {
      need(rest, 2, 'layer export NAME FILE');
      const r = await c.call('layer.export', { name: rest[0], file: path.resolve(rest[1]) });
      print(r, `exported ${rest[0]} to ${r.file} (${r.bytes} bytes, sha256 ${r.sha256})`);
      return 0;
    }
    case 'import': {
      need(rest, 1, 'layer import FILE');
      process.stderr.write(`importing ${path.resolve(rest[0])}...\n`);
      const l = await c.call('layer.import', { file: path.resolve(rest[0]) });
      print(l, `imported layer ${l.name} ${l.version}`);
      return 0;
    }
    default:
      throw new UsageError('expected layer create|list|show|rm|map|unmap|exclude|hide|reset|export|import');
  }
}

async function teamCommand(
  c: AgentClient,
  sub: string | undefined,
  rest: string[],
  flags: Map<string, string | true>,
  print: (v: unknown, t: string) => void,
): Promise<number> {
  switch (sub) {
    case 'join': {
      need(rest, 1, 'team join URL --secret-file FILE [--name NAME] [--team-file FILE] [--listen HOST:PORT]');
      const secretFile = str(flags, '--secret-file');
      if (!secretFile) throw new UsageError('team join needs --secret-file FILE (the secret never goes on the command line)');
      const teamFile = str(flags, '--team-file') ?? findUp(process.cwd(), TEAM_FILE);
      if (!teamFile) throw new StrataError('E_TEAM_INVALID', `no ${TEAM_FILE} in ${process.cwd()} or above`, 'Run this in the team\'s repository, or pass --team-file FILE.');
      const listen = str(flags, '--listen');
      const name = str(flags, '--name');
      // The CLI reads the team file: it often sits in a project the agent serves in place.
      const content = fs.readFileSync(teamFile, 'utf8');
      const st = await c.call('team.join', {
        url: rest[0], secretFile: path.resolve(secretFile), teamFile: path.resolve(teamFile), teamText: content,
        ...(name ? { name } : {}), ...(listen ? { listen } : {}),
      });
      print(st, teamText(st));
      return 0;
    }
    case 'leave': {
      const r = await c.call('team.leave', {});
      print(r, `left team ${r.left}`);
      return 0;
    }
    case 'status': {
      const st = await c.call('team.status', {});
      print(st, teamText(st));
      return 0;
    }
    case 'history': {
      const h = await c.call('team.history', {});
      print(h, h.length ? h.map(eventLine).join('\n') : '(no team decisions yet)');
      return 0;
    }
    case 'revert': {
      need(rest, 1, 'team revert ID');
      const r = await c.call('team.revert', { id: rest[0] });
      print(r, `reverted ${rest[0]} with decision ${r.decision}; active: ${r.active.join(', ') || '(none)'}`);
      return 0;
    }
    case 'hold':
    case 'follow': {
      need(rest, 1, `team ${sub} NAME`);
      const st = await c.call('team.hold', { name: rest[0], hold: sub === 'hold' });
      print(st, teamText(st));
      return 0;
    }
    default:
      throw new UsageError('expected team join|leave|status|history|revert|hold|follow');
  }
}

function findUp(dir: string, name: string): string | null {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, name))) return path.join(d, name);
    if (path.dirname(d) === d) return null;
  }
}

function eventLine(e: TeamEvent): string {
  const what = e.writes.map((w) => `${w.key}=${'active' in w.value ? (w.value.active ? 'on' : 'off') : w.value.layer ?? 'none'}`).join(' ');
  return `${e.origin}:${e.seq}  ${new Date(e.tag.wall).toISOString()}  ${e.user}@${e.host}  ${what}${e.reverts ? ` (reverts ${e.reverts})` : ''}`;
}

function teamText(t: TeamStatus): string {
  if (!t.joined) return 'not in a team';
  const lines = [
    `team ${t.team} as ${t.agent}${t.listen ? `, accepting peers on ws://${t.listen}` : ''}`,
    `relays: ${t.relays?.length ? t.relays.map((r) => `${r.url} (${r.state})`).join(', ') : '(none)'}`,
    `team active set: ${t.desired?.join(', ') || '(none)'}`,
    `drift here: ${t.drift?.length ? t.drift.join(' ') : 'none'}${t.held?.length ? `; held: ${t.held.join(', ')}` : ''}`,
  ];
  if (t.lastDecision) lines.push(`last decision ${t.lastDecision.id}: applied on ${t.lastDecision.applied} of ${t.lastDecision.of}`);
  for (const p of t.pulling ?? []) lines.push(`pulling ${p.layer}: ${p.done}/${p.total} bytes`);
  lines.push('peers:');
  for (const p of t.peers ?? []) {
    lines.push(`  ${p.user}@${p.host} (${p.agent}) ${p.connection}: ${p.active === null ? 'relay' : p.active.join(', ') || '(none)'}${p.drift.length ? ` drift ${p.drift.join(' ')}` : ''}${p.held.length ? ` held ${p.held.join(',')}` : ''}`);
  }
  if (!t.peers?.length) lines.push('  (none)');
  return lines.join('\n');
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError) {
      process.stderr.write(`strata: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (e instanceof StrataError) {
      process.stderr.write(`strata: ${e.code}: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
      process.exit(1);
    }
    process.stderr.write(`strata: E_INTERNAL: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);

