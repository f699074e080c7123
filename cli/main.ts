#!/usr/bin/env node
/**
 * `strata`: the command line. Finds the command in the table (commands.ts), checks its arguments
 * before anything starts, then runs it. A command that needs the agent connects to its socket,
 * starting it in the background when it is not running. Imports only protocol/ and shared/.
 */
import * as path from 'path';
import { AgentClient, connectOrStart } from '../shared/client';
import { findSocket, strataHome } from '../shared/paths';
import { Context, parseCommandArgs, wantsHelp } from './command';
import { COMMANDS, SECTIONS, findCommand, noCommand } from './commands';
import { commandHelp, groupHelp, mainHelp } from './help';
import { print, reportError } from './output';

async function run(argv: string[]): Promise<number> {
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
    agent: () => (conn.client ??= connectOrStart({ home, socket, agentScript: path.join(__dirname, 'agent.js'), start: true })),
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
