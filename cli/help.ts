/** Help texts, generated from the command table. */
import { COMMON_OPTIONS, Command, Option, usageLine } from './command';

/** "  left   right", or right on a line of its own when left is too long for the column. */
function row(left: string, right: string, column = 40): string {
  return left.length < column - 2 ? `  ${left.padEnd(column - 2)}${right}` : `  ${left}\n${' '.repeat(column)}${right}`;
}

/** `strata help`: one line per command, a blank line between sections. */
export function mainHelp(sections: Command[][]): string {
  const lines = ['usage: strata COMMAND [ARGS] [--json]'];
  for (const cmds of sections) lines.push('', ...cmds.map((c) => row(usageLine(c), c.synopsis)));
  const readOnly = sections.flat().filter((c) => c.readOnly);
  lines.push(
    '',
    'State-printing commands take --json. "strata COMMAND --help" shows one command, with an example.',
    `${readOnly.map((c) => c.name).join(', ')} never start the agent (exit status 3 when it is not running);`,
    'other commands start it when needed. Exit status: 0 done, 1 error, 2 usage error, 3 agent not running.',
    'strata --version prints the version.',
  );
  return lines.join('\n') + '\n';
}

/** `strata layer --help`: the commands of one group. */
export function groupHelp(table: Command[], group: string): string {
  const cmds = table.filter((c) => c.name.split(' ')[0] === group);
  const lines = [`usage: strata ${group} COMMAND [ARGS] [--json]`, '', ...cmds.map((c) => row(usageLine(c), c.synopsis))];
  lines.push('', `"strata ${group} COMMAND --help" shows one command, with an example.`);
  return lines.join('\n') + '\n';
}

function optionRow(name: string, o: Option): string {
  const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.value ?? 'VALUE'}`}`;
  return row(flag, o.description, 26);
}

/** `strata layer map --help`: that command only. */
export function commandHelp(cmd: Command): string {
  const lines = [`usage: strata ${usageLine(cmd)}`, '', cmd.description];
  if (cmd.readOnly) lines.push('It never starts the agent: exit status 3 when the agent is not running.');
  lines.push('', 'options:');
  for (const [name, o] of Object.entries({ ...cmd.options, ...COMMON_OPTIONS })) lines.push(optionRow(name, o));
  lines.push('', cmd.examples.length > 1 ? 'examples:' : 'example:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}
