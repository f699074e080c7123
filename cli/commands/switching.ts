/** activate, deactivate, swap. */
import { AgentClient } from '../../shared/client';
import { equalPriorityOverlaps, overlapText } from '../../shared/overlaps';
import { Command } from '../command';
import { activeText, overlapsOf } from '../output';

/** After a switch that activated `names`: warn where one of them ties with another active layer. */
async function warnOverlaps(c: AgentClient, names: string[]): Promise<void> {
  for (const o of overlapsOf(equalPriorityOverlaps(await c.call('layer.list', {})), names)) {
    process.stderr.write(`strata: warning: ${overlapText(o)}; give one a higher priority to choose\n`);
  }
}

export const switchingCommands: Command[] = [
  {
    name: 'activate',
    synopsis: 'switch layers on, in every view',
    description:
      'Switches the layers on in every view. A layer the team file lists switches for the whole team.\n' +
      'With --when-idle it first waits until no teammate has files of the layer open. Where a layer it\n' +
      'switched on claims a path another active layer of the same priority claims, it says which wins.',
    positionals: [{ name: 'NAME', variadic: true }],
    options: {
      'when-idle': { type: 'boolean', description: 'wait until no teammate has files of the layer open' },
      timeout: { type: 'integer', value: 'SECONDS', with: 'when-idle', description: 'how long --when-idle waits (default 60)' },
    },
    examples: [
      'strata activate node20   # ~/project/tools/node is now node 20, for every process',
      'strata activate node20 --when-idle --timeout 300',
    ],
    async action(a, ctx) {
      const timeout = a.integer('timeout');
      const c = await ctx.agent();
      const r = await c.call('activate', {
        names: a.positionals,
        whenIdle: a.flag('when-idle'),
        ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      });
      ctx.print(r, `${activeText(r.active)}${r.decision ? ` (team decision ${r.decision})` : ''}`);
      await warnOverlaps(c, a.positionals);
      return 0;
    },
  },
  {
    name: 'deactivate',
    synopsis: 'switch layers off; refuses while files of them are open',
    description:
      'Switches the layers off in every view. Refuses while a process has files of a layer open, naming\n' +
      'it, unless --force; refuses a layer that is not active (E_LAYER_INACTIVE), switching nothing.',
    positionals: [{ name: 'NAME', variadic: true }],
    options: { force: { type: 'boolean', description: 'switch off even while files of the layer are open' } },
    examples: ['strata deactivate node20   # back to what ~/project holds'],
    async action(a, ctx) {
      const r = await (await ctx.agent()).call('deactivate', { names: a.positionals, force: a.flag('force') });
      ctx.print(r, activeText(r.active));
      return 0;
    },
  },
  {
    name: 'swap',
    synopsis: 'replace OLD by NEW in one step',
    description:
      'Deactivates OLD and activates NEW in one switch. Refuses while a process has files of OLD open,\nnaming it, unless --force.',
    positionals: [{ name: 'OLD' }, { name: 'NEW' }],
    options: { force: { type: 'boolean', description: 'switch even while files of OLD are open' } },
    examples: ['strata swap node18 node20'],
    async action(a, ctx) {
      const [old, next] = a.positionals;
      const c = await ctx.agent();
      const r = await c.call('swap', { old, new: next, ...(a.flag('force') ? { force: true } : {}) });
      ctx.print(r, activeText(r.active));
      await warnOverlaps(c, [next]);
      return 0;
    },
  },
];
