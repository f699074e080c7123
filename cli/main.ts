#!/usr/bin/env node
/**
 * `strata`: the command line. Finds the command in the table (commands.ts), checks its arguments
 * before anything starts, then runs it. A command that needs the agent connects to its socket; a
 * read-only one never starts it, the others start it in the background and say so on stderr.
 * Imports only protocol/ and shared/.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AgentClient, NoAgent, connectOrStart, logFile } from '../shared/client';
import { findSocket, strataHome } from '../shared/paths';
import { AgentStopped, Command, Context, parseCommandArgs, wantsHelp } from './command';
import { COMMANDS, SECTIONS, findCommand, noCommand } from './commands';
import { commandHelp, groupHelp, mainHelp } from './help';
import { print, reportError } from './output';

/** The version of the package this CLI came in (dist/ sits beside package.json). */
function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Connects to the agent of `home`; starts it unless the command only reads. */
async function connect(cmd: Command, home: string, socket: string): Promise<AgentClient> {
  const target = { home, socket, agentScript: path.join(__dirname, 'agent.js') };
  try {
    return await connectOrStart({ ...target, start: false });
  } catch (e) {
    if (!(e instanceof NoAgent)) throw e; // an unsafe runtime folder or socket is refused, never taken for "stopped"
  }
  if (cmd.readOnly) throw new AgentStopped(home);
  process.stderr.write(`strata: starting the agent for ${home} (log: ${logFile(home)})\n`);
  return connectOrStart({ ...target, start: true });
}

async function run(argv: string[]): Promise<number> {
  if (argv[0] === '--version') {
    process.stdout.write(`strata ${version()}\n`);
    return 0;
  }
  const found = findCommand(argv);
  const cmd = found.command;
  if (!cmd) {
    const help = wantsHelp(found.rest);
    if (!found.words.length && (help || !argv.length)) {
      process.stdout.write(mainHelp(SECTIONS));
      return help ? 0 : 2;
    }
    if (help) {
      process.stdout.write(groupHelp(COMMANDS, found.words.join(' ')));
      return 0;
    }
    throw noCommand(
      found.words,
      found.rest.find((a) => a !== '--json'),
    );
  }
  if (wantsHelp(found.rest, cmd)) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  const args = parseCommandArgs(cmd, found.rest);

  const home = strataHome();
  const socket = findSocket(home);
  const conn: { client?: Promise<AgentClient> } = {};
  const json = args.flag('json');
  const ctx: Context = {
    print: (value, text) => print(json, value, text),
    home,
    socket,
    dist: __dirname,
    agent: () => (conn.client ??= connect(cmd, home, socket)),
  };
  try {
    return await cmd.action(args, ctx);
  } finally {
    (await conn.client?.catch(() => null))?.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => process.exit(reportError(e)),
);
