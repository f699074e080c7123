/**
 * What the CLI prints: --json or the human text on stdout, errors on stderr as "strata: CODE:
 * message" plus what to do (exit status 1), usage errors with the command's usage (exit status 2).
 */
import { AgentStatus, LayerInfo, TeamEvent, TeamStatus, ViewInfo, eventId } from '../protocol';
import { StrataError } from '../shared/errors';
import { Overlap, overlapText } from '../shared/overlaps';
import { AgentStopped, UsageError, usageLine } from './command';

export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text + '\n');
}

/** Writes the error to stderr; returns the exit status. */
export function reportError(e: unknown): number {
  if (e instanceof UsageError) {
    const more = e.command ? `strata ${e.command.name} --help` : e.group ? `strata ${e.group} --help` : 'strata help';
    const usage = e.command ? `usage: strata ${usageLine(e.command)}\n` : '';
    process.stderr.write(`strata: ${e.message}\n${usage}Run "${more}" for more.\n`);
    return 2;
  }
  if (e instanceof StrataError) {
    process.stderr.write(`strata: ${e.code}: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    return e instanceof AgentStopped ? AgentStopped.EXIT : 1;
  }
  process.stderr.write(`strata: E_INTERNAL: ${(e as Error)?.stack ?? e}\n`);
  return 1;
}

export function activeText(active: string[]): string {
  return `active: ${active.join(', ') || '(none)'}`;
}

export function layerLine(l: LayerInfo): string {
  return `${l.active ? '*' : ' '} ${l.name.padEnd(20)} ${String(l.version).padEnd(12)} priority ${String(l.priority).padEnd(6)} ${l.mappings.length} mapping(s)`;
}

export function showLayer(l: LayerInfo & { digest?: string }, overlaps: Overlap[] = []): string {
  const out = [
    `${l.name} ${l.version}${l.active ? ' (active)' : ''}`,
    `  priority:    ${l.priority}`,
    `  description: ${l.description}`,
    `  writable:    ${l.writableBytes} bytes`,
    ...(l.digest ? [`  digest:      ${l.digest}`] : []),
    '  mappings:',
    ...l.mappings.map((m) => `    ${m.original} -> ${m.destination}`),
  ];
  if (l.excludes.length) out.push('  excludes:', ...l.excludes.map((e) => `    ${e}`));
  if (l.deletes.length) out.push('  delete entries:', ...l.deletes.map((d) => `    ${d}`));
  if (overlaps.length) out.push('  overlaps of equal priority:', ...overlaps.map((o) => `    ${overlapText(o)}`));
  return out.join('\n');
}

export function viewLine(v: ViewInfo): string {
  return `${v.base}${v.inPlace ? ' (in place)' : ` at ${v.mountpoint}`} ${v.state}${v.error ? `: ${v.error}` : ''}`;
}

export function statusText(s: AgentStatus, overlaps: Overlap[]): string {
  return [
    `agent pid ${s.pid}, home ${s.home}`,
    `active: ${s.active.length ? s.active.join(', ') : '(none)'}`,
    ...(overlaps.length ? ['overlaps of equal priority:', ...overlaps.map((o) => `  ${overlapText(o)}`)] : []),
    `layers: ${s.layers.length}`,
    'views:',
    ...(s.views.length ? s.views.map((v) => '  ' + viewLine(v)) : ['  (none)']),
  ].join('\n');
}

/** Overlaps that involve one of `names`. */
export function overlapsOf(overlaps: Overlap[], names: string[]): Overlap[] {
  return overlaps.filter((o) => names.includes(o.winner) || o.losers.some((n) => names.includes(n)));
}

export function eventLine(e: TeamEvent): string {
  const what = e.writes
    .map((w) => `${w.key}=${'active' in w.value ? (w.value.active ? 'on' : 'off') : (w.value.layer ?? 'none')}`)
    .join(' ');
  return `${eventId(e)}  ${new Date(e.tag.wall).toISOString()}  ${e.user}@${e.host}  ${what}${e.reverts ? ` (reverts ${e.reverts})` : ''}`;
}

export function teamText(t: TeamStatus): string {
  if (!t.joined) return 'not in a team';
  const lines = [
    `team ${t.team} as ${t.user ? `${t.user} (agent ${t.agent})` : t.agent}${t.listen ? `, accepting peers on ws://${t.listen}` : ''}`,
    `relays: ${t.relays?.length ? t.relays.map((r) => `${r.url} (${r.state})`).join(', ') : '(none)'}`,
    `team active set: ${t.desired?.join(', ') || '(none)'}`,
    `drift here: ${t.drift?.length ? t.drift.join(' ') : 'none'}${t.held?.length ? `; held: ${t.held.join(', ')}` : ''}`,
  ];
  if (t.lastDecision) lines.push(`last decision ${t.lastDecision.id}: applied on ${t.lastDecision.applied} of ${t.lastDecision.of}`);
  for (const p of t.pulling ?? []) lines.push(`pulling ${p.layer}: ${p.done}/${p.total} bytes`);
  lines.push('peers:');
  for (const p of t.peers ?? []) {
    lines.push(
      `  ${p.user}@${p.host} (${p.agent}) ${p.connection}: ${p.active === null ? 'relay' : p.active.join(', ') || '(none)'}${p.drift.length ? ` drift ${p.drift.join(' ')}` : ''}${p.held.length ? ` held ${p.held.join(',')}` : ''}`,
    );
  }
  if (!t.peers?.length) lines.push('  (none)');
  return lines.join('\n');
}
