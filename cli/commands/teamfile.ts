/**
 * team init, add, remove: writing strata.team.json. The CLI reads and writes the file itself (it
 * often sits in a project the agent serves in place); the digests come from the agent, which digests
 * the layers in its store. The file is checked with the team file's schema before it is written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LAYER_NAME_RE, TEAM_FILE, TEAM_FILE_FORMAT, isNatsUrl } from '../../protocol';
import { StrataError } from '../../shared/errors';
import { isInside } from '../../shared/paths';
import {
  Pin,
  TeamFileJson,
  findTeamFileUp,
  pinLayers,
  readTeamFile,
  secretExists,
  unpinLayers,
  writeNewSecret,
  writeTeamFile,
} from '../../shared/teamfile';
import { Command, Context, UsageError } from '../command';
import { AgentClient } from '../../shared/client';
import { TeamStatus } from '../../protocol';

/**
 * Has a joined agent read its team file again. The CLI sends the text: the file often sits in a
 * folder the agent serves in place, where it does not read files for clients.
 */
export function reloadTeamFile(agent: AgentClient, file: string): Promise<TeamStatus> {
  return agent.call('team.reload', { teamText: fs.readFileSync(file, 'utf8') });
}

/** After `file` changed: a joined agent that uses it reads it again (and says so). */
async function reloadIfJoined(ctx: Context, file: string): Promise<void> {
  const agent = await ctx.agent();
  const st = await agent.call('team.status', {});
  if (st.joined && st.teamFile === file) {
    await reloadTeamFile(agent, file);
    process.stderr.write('strata: this agent now uses the changed team file; teammates run "strata team reload" once they have it\n');
  }
}

/** The team file named by --team-file, else the nearest strata.team.json upward. */
export function teamFileArg(given: string | undefined): string {
  const found = given ? path.resolve(given) : findTeamFileUp(process.cwd());
  if (!found) {
    throw new StrataError(
      'E_TEAM_INVALID',
      `no ${TEAM_FILE} in ${process.cwd()} or above`,
      'Run this in the team\'s repository, pass --team-file FILE, or write one with "strata team init".',
    );
  }
  return found;
}

/** Each layer's digest and version, from the agent's store. */
async function pins(ctx: Context, names: string[]): Promise<Record<string, Pin & { version: string }>> {
  const c = await ctx.agent();
  const out: Record<string, Pin & { version: string }> = {};
  for (const name of names) {
    const l = await c.call('layer.show', { name });
    out[name] = { digest: l.digest, version: l.version };
  }
  return out;
}

const short = (digest: string) => `${digest.slice(0, 19)}...`;

const teamFileOption = { type: 'string' as const, value: 'FILE', description: `the team file, instead of looking for ${TEAM_FILE}` };

export const teamFileCommands: Command[] = [
  {
    name: 'team init',
    synopsis: `write ${TEAM_FILE} here (and a new secret)`,
    description:
      `Writes ${TEAM_FILE} in the current folder: the team, its relays, and each --layer with the content\n` +
      "digest of this agent's copy. --slot makes layers mutually exclusive (a swap between them is one\n" +
      'decision). --new-secret writes a new random secret to --secret-file (mode 0600; never printed):\n' +
      'give it to teammates over a safe channel, and keep it out of the repository.',
    positionals: [],
    options: {
      team: { type: 'string', value: 'NAME', description: 'the team name (default: the folder name)' },
      relay: { type: 'string', value: 'URL', multiple: true, description: 'a ws:// or wss:// relay, or a nats:// server (repeatable)' },
      layer: { type: 'string', value: 'NAME', multiple: true, description: 'a team layer from this agent (repeatable)' },
      slot: { type: 'string', value: 'SLOT=A,B', multiple: true, description: 'a swap slot of team layers (repeatable)' },
      'secret-file': { type: 'string', value: 'FILE', with: 'new-secret', description: 'where to write the new secret' },
      'new-secret': { type: 'boolean', with: 'secret-file', description: 'write a new random secret there' },
      'team-file': { ...teamFileOption, description: `write FILE instead of ./${TEAM_FILE}` },
    },
    examples: [
      'strata team init --relay ws://relay.example.com:7450 --layer node18 --layer node20 --slot node=node18,node20',
      'strata team init --layer jdk21 --secret-file ~/.config/strata/acme.secret --new-secret',
    ],
    async action(a, ctx) {
      const file = path.resolve(a.string('team-file') ?? TEAM_FILE);
      const team =
        a.string('team') ??
        (path
          .basename(path.dirname(file))
          .replace(/[^A-Za-z0-9._+-]/g, '-')
          .replace(/^[^A-Za-z0-9]+/, '') ||
          'team');
      if (!LAYER_NAME_RE.test(team)) throw new UsageError(`--team ${team}: use letters, digits, ".", "_", "+" and "-"`, this);
      const relays = a.strings('relay');
      for (const r of relays) {
        if (!/^wss?:\/\/[^\s/]+/.test(r) && !isNatsUrl(r))
          throw new UsageError(
            `--relay ${r}: not a ws:// or wss:// relay address, nor a nats://, tls://, nats+ws:// or nats+wss:// server`,
            this,
          );
      }
      const slots: Record<string, string[]> = {};
      for (const s of a.strings('slot')) {
        const m = /^([^=]+)=(.+)$/.exec(s);
        if (!m) throw new UsageError(`--slot ${s}: expected SLOT=LAYER,LAYER`, this);
        slots[m[1]] = m[2].split(',').filter(Boolean);
      }
      const layers = [...new Set(a.strings('layer'))];
      if (fs.existsSync(file)) {
        throw new StrataError(
          'E_BAD_REQUEST',
          `${file} exists`,
          'Change it with "strata team add" and "strata team remove", or remove it first.',
        );
      }
      const given = a.string('secret-file');
      const secret = given === undefined ? undefined : path.resolve(given);
      if (secret && fs.existsSync(secret)) throw secretExists(secret); // before anything is written
      const t: TeamFileJson = { format: TEAM_FILE_FORMAT, team, relays, layers: await pins(ctx, layers), defaults: [], slots };
      writeTeamFile(file, t);
      const lines = [
        `wrote ${file}: team ${team}`,
        `  relays: ${relays.join(', ') || '(none: teammates join with URL "-" and dial each other)'}`,
        `  layers: ${layers.map((n) => `${n} (${short(t.layers[n].digest)})`).join(', ') || '(none yet: "strata team add NAME")'}`,
      ];
      if (Object.keys(slots).length)
        lines.push(
          `  slots: ${Object.entries(slots)
            .map(([s, ls]) => `${s}=${ls.join(',')}`)
            .join(' ')}`,
        );
      if (secret) {
        writeNewSecret(secret);
        lines.push(`wrote a new secret to ${secret} (mode 0600): give it to teammates over a safe channel`);
        if (isInside(secret, path.dirname(file))) {
          process.stderr.write(`strata: warning: ${secret} is inside the folder of ${TEAM_FILE}: keep it out of the repository\n`);
        }
      }
      ctx.print({ file, ...t, ...(secret ? { secretFile: secret } : {}) }, lines.join('\n'));
      return 0;
    },
  },
  {
    name: 'team add',
    synopsis: 'add a layer to the team file, or update its digest',
    description:
      `Adds each layer to ${TEAM_FILE} (found upward from the current folder, or --team-file) with the\n` +
      "content digest of this agent's copy, or updates the digest of a layer already there. Teammates' agents\n" +
      'read the team file when they join.',
    positionals: [{ name: 'NAME', variadic: true }],
    options: { 'team-file': teamFileOption },
    examples: ['strata team add node22'],
    async action(a, ctx) {
      const file = teamFileArg(a.string('team-file'));
      const t = readTeamFile(file);
      const lines = pinLayers(t, await pins(ctx, a.positionals)).map(({ name, before, after }) =>
        before === after
          ? `${name}: unchanged (${short(after)})`
          : before
            ? `${name}: digest ${short(before)} -> ${short(after)}`
            : `${name}: added (${short(after)})`,
      );
      writeTeamFile(file, t);
      ctx.print({ file, ...t }, [`${file}:`, ...lines.map((l) => `  ${l}`)].join('\n'));
      await reloadIfJoined(ctx, file);
      return 0;
    },
  },
  {
    name: 'team remove',
    synopsis: 'remove a layer from the team file',
    description: `Removes each layer from ${TEAM_FILE} (found upward, or --team-file): from its layers, defaults and slots.`,
    positionals: [{ name: 'NAME', variadic: true }],
    options: { 'team-file': teamFileOption },
    examples: ['strata team remove node16'],
    async action(a, ctx) {
      const file = teamFileArg(a.string('team-file'));
      const t = readTeamFile(file);
      unpinLayers(t, a.positionals, file);
      writeTeamFile(file, t);
      ctx.print({ file, ...t }, `${file}: removed ${a.positionals.join(', ')}; layers: ${Object.keys(t.layers).join(', ') || '(none)'}`);
      await reloadIfJoined(ctx, file);
      return 0;
    },
  },
];
