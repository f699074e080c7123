/** view add, list, rm. */
import * as path from 'path';
import { Command } from '../command';
import { viewLine } from '../output';

export const viewCommands: Command[] = [
  {
    name: 'view add',
    synopsis: 'serve BASE in place, or at MOUNTPOINT',
    description: 'Serves BASE through the active layers: over BASE itself, or at MOUNTPOINT with BASE left as it is.',
    positionals: [{ name: 'BASE' }],
    options: {
      at: { type: 'string', value: 'MOUNTPOINT', description: 'serve the view here instead of over BASE' },
      'no-warm': { type: 'boolean', description: 'do not list the new view first (its first walk then looks up every name)' },
    },
    examples: ['strata view add ~/project   # mount over ~/project itself'],
    async action(a, ctx) {
      const base = path.resolve(a.positionals[0]);
      const at = a.string('at');
      const params = { base, ...(at ? { at: path.resolve(at) } : {}), ...(a.flag('no-warm') ? { warm: false } : {}) };
      const v = await (await ctx.agent()).call('view.add', params);
      ctx.print(v, `view ${viewLine(v)}`);
      return 0;
    },
  },
  {
    name: 'view list',
    readOnly: true,
    synopsis: 'every view and its state',
    description: 'Lists every view: its base, where it is served, and its state.',
    positionals: [],
    options: {},
    examples: ['strata view list'],
    async action(_a, ctx) {
      const vs = await (await ctx.agent()).call('view.list', {});
      ctx.print(vs, vs.length ? vs.map(viewLine).join('\n') : '(no views)');
      return 0;
    },
  },
  {
    name: 'view rm',
    synopsis: 'stop serving BASE',
    description: 'Unmounts the view of BASE and forgets it.',
    positionals: [{ name: 'BASE' }],
    options: {},
    examples: ['strata view rm ~/project'],
    async action(a, ctx) {
      const r = await (await ctx.agent()).call('view.rm', { base: path.resolve(a.positionals[0]) });
      ctx.print(r, `view of ${r.removed} removed`);
      return 0;
    },
  },
];
