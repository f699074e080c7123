/** team join, leave, status, history, revert, hold, follow. */
import * as fs from 'fs';
import * as path from 'path';
import { TEAM_FILE } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { Command } from '../command';
import { activeText, eventLine, teamText } from '../output';
import { findTeamFileUp } from '../../shared/teamfile';
import { reloadTeamFile } from './teamfile';

function holdCommand(hold: boolean): Command {
  const name = hold ? 'hold' : 'follow';
  return {
    name: `team ${name}`,
    synopsis: hold ? 'keep a team layer as it is here' : 'follow the team again for a layer',
    description: hold
      ? 'Keeps NAME as it is on this machine: the team\'s switches of it are not applied here until "strata team follow NAME".'
      : 'Applies the team\'s switches of NAME here again, after "strata team hold NAME".',
    positionals: [{ name: 'NAME' }],
    options: {},
    examples: [`strata team ${name} node20`],
    async action(a, ctx) {
      const st = await (await ctx.agent()).call('team.hold', { name: a.positionals[0], hold });
      ctx.print(st, teamText(st));
      return 0;
    },
  };
}

export const teamCommands: Command[] = [
  {
    name: 'team join',
    synopsis: 'join the team of strata.team.json through a relay',
    description:
      `Joins the team that ${TEAM_FILE} (found upward from the current folder, or --team-file) describes,\n` +
      'through the relay at URL; URL "-" joins without a relay (teammates dial this agent, see --listen).\n' +
      'URL may name a NATS server instead (nats://, tls://, nats+ws://, nats+wss://; see docs/nats.md).\n' +
      'The secret is read from a file (chmod 600), never from the command line.',
    positionals: [{ name: 'URL' }],
    options: {
      'secret-file': {
        type: 'string',
        value: 'FILE',
        required: true,
        why: 'the secret never goes on the command line',
        description: "the team's shared secret (chmod 600)",
      },
      name: { type: 'string', value: 'NAME', description: 'how teammates see this agent' },
      'team-file': { type: 'string', value: 'FILE', description: `the team file, instead of looking for ${TEAM_FILE}` },
      listen: { type: 'string', value: 'HOST:PORT', description: "also accept teammates' agents on HOST:PORT" },
      credentials: {
        type: 'string',
        value: 'FILE',
        description: "NATS only: this agent's NATS user and password, nkey seed or .creds (chmod 600; see docs/nats.md)",
      },
    },
    examples: [
      'strata team join ws://127.0.0.1:7450 --secret-file team.secret --name alice',
      'strata team join nats://nats.example:4222 --secret-file team.secret --credentials nats.json',
    ],
    async action(a, ctx) {
      const teamFile = a.string('team-file') ?? findTeamFileUp(process.cwd());
      if (!teamFile)
        throw new StrataError(
          'E_TEAM_INVALID',
          `no ${TEAM_FILE} in ${process.cwd()} or above`,
          "Run this in the team's repository, or pass --team-file FILE.",
        );
      const listen = a.string('listen');
      const name = a.string('name');
      const credentials = a.string('credentials');
      // The CLI reads the team file: it often sits in a project the agent serves in place.
      const content = fs.readFileSync(teamFile, 'utf8');
      const st = await (
        await ctx.agent()
      ).call('team.join', {
        url: a.positionals[0],
        secretFile: path.resolve(a.string('secret-file')!),
        teamFile: path.resolve(teamFile),
        teamText: content,
        ...(name ? { name } : {}),
        ...(listen ? { listen } : {}),
        ...(credentials ? { credentials: path.resolve(credentials) } : {}),
      });
      ctx.print(st, teamText(st));
      return 0;
    },
  },
  {
    name: 'team leave',
    synopsis: 'leave the team',
    description: 'Leaves the team; the layers stay as they are.',
    positionals: [],
    options: {},
    examples: ['strata team leave'],
    async action(_a, ctx) {
      const r = await (await ctx.agent()).call('team.leave', {});
      ctx.print(r, `left team ${r.left}`);
      return 0;
    },
  },
  {
    name: 'team reload',
    synopsis: 'read the team file again (after a pull brought a new one)',
    description:
      'Has the agent read the team file it joined with again: new layers, digests, defaults and slots apply at once,\n' +
      'without leaving the team. Run it once a changed strata.team.json reached this machine (after a git pull, say).',
    positionals: [],
    options: {},
    examples: ['strata team reload'],
    async action(_a, ctx) {
      const agent = await ctx.agent();
      const st = await agent.call('team.status', {});
      if (!st.joined || !st.teamFile) {
        throw new StrataError('E_TEAM_NOT_JOINED', 'this agent is not in a team', 'Join one with "strata team join".');
      }
      const r = await reloadTeamFile(agent, st.teamFile);
      ctx.print(r, `read ${st.teamFile} again; team layers: ${(r.teamLayers ?? []).join(', ') || '(none)'}`);
      return 0;
    },
  },
  {
    name: 'team status',
    readOnly: true,
    synopsis: 'peers, drift, acknowledgements',
    description: 'Shows the team, its relays, the team\'s active set, drift here, the last decision ("applied on 3 of 4") and every peer.',
    positionals: [],
    options: {},
    examples: ['strata team status'],
    async action(_a, ctx) {
      const st = await (await ctx.agent()).call('team.status', {});
      ctx.print(st, teamText(st));
      return 0;
    },
  },
  {
    name: 'team history',
    readOnly: true,
    synopsis: "the team's decisions, with their IDs",
    description: "Lists the team's decisions: ID, time, who, and what each switched.",
    positionals: [],
    options: {},
    examples: ['strata team history'],
    async action(_a, ctx) {
      const h = await (await ctx.agent()).call('team.history', {});
      ctx.print(h, h.length ? h.map(eventLine).join('\n') : '(no team decisions yet)');
      return 0;
    },
  },
  {
    name: 'team revert',
    synopsis: 'undo a team decision (IDs from "team history")',
    description: 'Undoes a team decision with a new decision that every teammate applies.',
    positionals: [{ name: 'ID' }],
    options: {},
    examples: ['strata team revert alice-1a2b3c4d:7   # an ID from "strata team history"'],
    async action(a, ctx) {
      const [id] = a.positionals;
      const r = await (await ctx.agent()).call('team.revert', { id });
      ctx.print(r, `reverted ${id} with decision ${r.decision}; ${activeText(r.active)}`);
      return 0;
    },
  },
  holdCommand(true),
  holdCommand(false),
  {
    name: 'team prune',
    synopsis: "delete layer archives no one names from the team's NATS store",
    description:
      "NATS teams only: deletes the layer archives in the team's Object Store whose digest neither this agent's team file\n" +
      'nor any teammate online (its presence) names: those of layer versions the team has moved past. An archive a teammate\n' +
      'still has stays; one deleted while a teammate on an older team file still needs it is published again by any\n' +
      'teammate who has that version. --dry-run lists what would go.',
    positionals: [],
    options: { 'dry-run': { type: 'boolean', description: 'list the archives that would be deleted, delete nothing' } },
    examples: ['strata team prune --dry-run', 'strata team prune'],
    async action(a, ctx) {
      const r = await (await ctx.agent()).call('team.prune', { dryRun: a.flag('dry-run') });
      const bytes = r.removed.reduce((n, x) => n + x.bytes, 0);
      const lines = r.removed.map((x) => `  ${x.layer} ${x.digest} (${x.bytes} bytes)`);
      const head = r.removed.length
        ? `${r.dryRun ? 'would delete' : 'deleted'} ${r.removed.length} archive(s), ${bytes} bytes:`
        : 'no archive to delete';
      ctx.print(r, [head, ...lines, `kept ${r.kept} archive(s) the team file or a teammate names`].join('\n'));
      return 0;
    },
  },
];
