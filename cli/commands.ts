/**
 * The command table: every command of `strata`, in the order `strata help` lists them, one file per
 * group under commands/. Finding the command that argv names happens here too.
 */
import { Command, UsageError, closest } from './command';
import { agentCommands } from './commands/agent';
import { layerCommands } from './commands/layer';
import { relayCommands } from './commands/relay';
import { switchingCommands } from './commands/switching';
import { teamCommands } from './commands/team';
import { teamFileCommands } from './commands/teamfile';
import { viewCommands } from './commands/view';
import { commandHelp, groupHelp, mainHelp } from './help';

const helpCommand: Command = {
  name: 'help',
  synopsis: 'this list, or the help of one command',
  description: 'Lists the commands, or shows one command\'s usage, options and an example (as "strata COMMAND --help" does).',
  positionals: [{ name: 'COMMAND', variadic: true, optional: true }],
  options: {},
  examples: ['strata help layer map'],
  async action(a) {
    process.stdout.write(helpText(a.positionals));
    return 0;
  },
};

/** Sections of `strata help`, separated by a blank line. */
export const SECTIONS: Command[][] = [
  agentCommands,
  layerCommands,
  viewCommands,
  switchingCommands,
  [...teamFileCommands, ...teamCommands],
  relayCommands,
  [helpCommand],
];
export const COMMANDS: Command[] = SECTIONS.flat();

/** Flags that may come before the command's name too, as in `strata --json status`. */
const ANYWHERE = new Set(['--json', '--help', '-h']);

export interface Found {
  command?: Command;
  /** The words that named the command, or a group of commands ("layer") when no command. */
  words: string[];
  /** What is left for the command's own parsing. */
  rest: string[];
}

/** The longest run of leading words that names a command (or at least a group of them). */
export function findCommand(argv: string[]): Found {
  const words: string[] = [];
  const carried: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (ANYWHERE.has(a)) {
      carried.push(a);
      continue;
    }
    const name = [...words, a].join(' ');
    if (!COMMANDS.some((c) => c.name === name || c.name.startsWith(name + ' '))) break;
    words.push(a);
    const command = COMMANDS.find((c) => c.name === name);
    if (command) return { command, words, rest: [...carried, ...argv.slice(i + 1)] };
  }
  return { words, rest: [...carried, ...argv.slice(i)] };
}

/** The usage error for words that name no command. */
export function noCommand(words: string[], next: string | undefined): UsageError {
  if (words.length) {
    const group = words.join(' ');
    const subs = COMMANDS.filter((c) => c.name.startsWith(group + ' ')).map((c) => c.name.slice(group.length + 1).split(' ')[0]);
    const like = next === undefined || next.startsWith('-') ? undefined : closest(next, subs);
    return new UsageError(
      `expected ${group} ${[...new Set(subs)].join('|')}${like ? `; did you mean "${group} ${like}"?` : ''}`,
      undefined,
      group,
    );
  }
  if (next === undefined) return new UsageError('expected a command');
  if (next.startsWith('-') && next !== '-') return new UsageError(`unknown option ${next}`);
  const like = closest(next, [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))]);
  return new UsageError(`unknown command "${next}"${like ? `; did you mean "${like}"?` : ''}`);
}

/** `strata help [WORDS...]`. */
export function helpText(words: string[]): string {
  if (!words.length) return mainHelp(SECTIONS);
  const found = findCommand(words);
  if (found.command && !found.rest.length) return commandHelp(found.command);
  if (!found.command && found.words.length === words.length) return groupHelp(COMMANDS, words.join(' '));
  throw new UsageError(`unknown command "${words.join(' ')}"`);
}
