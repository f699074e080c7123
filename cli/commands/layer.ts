/** layer create, list, show, rm, map, unmap, exclude, hide, reset, export, import. */
import * as path from 'path';
import { LayerInfo } from '../../protocol';
import { Command, Context, UsageError } from '../command';
import { layerLine, overlapsOf, showLayer } from '../output';
import { equalPriorityOverlaps } from '../../shared/overlaps';
import { withProgress } from '../progress';

const NAME = { name: 'NAME' };

/** The commands that change a layer's rules and print the layer. */
function ruleCommand(
  name: string,
  positionals: string[],
  synopsis: string,
  description: string,
  example: string,
  call: (ctx: Context, p: string[]) => Promise<LayerInfo>,
): Command {
  return {
    name: `layer ${name}`,
    synopsis,
    description,
    positionals: positionals.map((n) => ({ name: n })),
    options: {},
    examples: [example],
    async action(a, ctx) {
      const l = await call(ctx, a.positionals);
      ctx.print(l, showLayer(l));
      return 0;
    },
  };
}

export const layerCommands: Command[] = [
  {
    name: 'layer create',
    synopsis: 'capture a folder or an archive as a layer',
    description:
      'Copies DIR, or unpacks ARCHIVE (.tar.gz, .tgz, .tar.xz, .txz, .zip), into the layer store as a new\n' +
      'layer. An archive whose entries all sit in one folder (node-v20.11.0-linux-x64/...) gives the layer\n' +
      "that folder's content. Without --map the layer maps its whole tree over the view root (/ -> /);\n" +
      'each --map ORIGINAL=DESTINATION redirects view path ORIGINAL to DESTINATION inside the layer instead.',
    positionals: [NAME],
    options: {
      from: { type: 'string', value: 'DIR|ARCHIVE', required: true, description: 'the folder or archive to capture' },
      map: {
        type: 'string',
        value: 'ORIGINAL=DESTINATION',
        multiple: true,
        description: 'a mapping, instead of / -> / (repeatable)',
      },
      priority: { type: 'integer', value: 'N', description: 'wins over active layers of lower priority' },
      version: { type: 'string', value: 'V', description: 'shown next to the name' },
      description: { type: 'string', value: 'TEXT', description: 'what the layer holds' },
    },
    examples: [
      'strata layer create node20 --from node-v20.11.0-linux-x64.tar.xz --map /tools/node=/ --version 20.11.0',
      'strata layer create jdk21 --from /opt/jdk-21 --map /tools/java=/',
    ],
    async action(a, ctx) {
      const [name] = a.positionals;
      const from = path.resolve(a.string('from')!);
      const mappings = a.strings('map').map((m) => {
        const eq = m.indexOf('=');
        if (eq <= 0) throw new UsageError(`--map ${m}: expected ORIGINAL=DESTINATION, like /tools/node=/`, this);
        return { original: m.slice(0, eq), destination: m.slice(eq + 1) };
      });
      const c = await ctx.agent();
      const l = await withProgress(
        c,
        `create ${name}`,
        () => process.stderr.write(`capturing ${from} as layer ${name}...\n`),
        () =>
          c.call('layer.create', {
            name,
            from,
            priority: a.integer('priority'),
            version: a.string('version'),
            description: a.string('description'),
            ...(mappings.length ? { mappings } : {}),
          }),
      );
      ctx.print(l, `created layer ${l.name} ${l.version}: ${l.mappings.map((m) => `${m.original} -> ${m.destination}`).join(', ')}`);
      return 0;
    },
  },
  {
    name: 'layer list',
    readOnly: true,
    synopsis: 'every layer; * marks the active ones',
    description: 'Lists every layer with its version, priority and number of mappings; * marks the active ones.',
    positionals: [],
    options: {},
    examples: ['strata layer list'],
    async action(_a, ctx) {
      const ls = await (await ctx.agent()).call('layer.list', {});
      ctx.print(ls, ls.length ? ls.map(layerLine).join('\n') : '(no layers)');
      return 0;
    },
  },
  {
    name: 'layer show',
    readOnly: true,
    synopsis: "one layer's rules and size",
    description:
      'Shows a layer: version, priority, description, writable bytes, its content digest (as strata.team.json\n' +
      'pins it: "strata team add" writes it there), mappings, excludes and delete entries.',
    positionals: [NAME],
    options: {},
    examples: ['strata layer show node20'],
    async action(a, ctx) {
      const c = await ctx.agent();
      const l = await c.call('layer.show', { name: a.positionals[0] });
      const overlaps = overlapsOf(equalPriorityOverlaps(await c.call('layer.list', {})), [l.name]);
      ctx.print({ ...l, overlaps }, showLayer(l, overlaps));
      return 0;
    },
  },
  {
    name: 'layer rm',
    synopsis: 'remove a layer',
    description: 'Removes a layer from the store.',
    positionals: [NAME],
    options: {},
    examples: ['strata layer rm node18'],
    async action(a, ctx) {
      const r = await (await ctx.agent()).call('layer.rm', { name: a.positionals[0] });
      ctx.print(r, `removed layer ${r.removed}`);
      return 0;
    },
  },
  ruleCommand(
    'map',
    ['NAME', 'ORIGINAL', 'DESTINATION'],
    'redirect view path ORIGINAL into the layer',
    'While the layer is active, view path ORIGINAL (and what lies below it) shows DESTINATION, a path\ninside the layer.',
    "strata layer map node20 /tools/node /   # /tools/node in the view is the layer's root",
    async (ctx, [name, original, destination]) => (await ctx.agent()).call('layer.map', { name, original, destination }),
  ),
  ruleCommand(
    'unmap',
    ['NAME', 'ORIGINAL'],
    'remove the mapping of ORIGINAL',
    "Removes the layer's mapping of view path ORIGINAL.",
    'strata layer unmap node20 /   # a new layer maps its whole tree over the view root',
    async (ctx, [name, original]) => (await ctx.agent()).call('layer.unmap', { name, original }),
  ),
  ruleCommand(
    'exclude',
    ['NAME', 'PATH'],
    'PATH always passes through to the base',
    'PATH (and what lies below it) always shows the base, even inside a mapping of the layer.',
    'strata layer exclude node20 /tools/node/etc',
    async (ctx, [name, p]) => (await ctx.agent()).call('layer.exclude', { name, path: p }),
  ),
  ruleCommand(
    'hide',
    ['NAME', 'PATH'],
    'add a delete entry: PATH is hidden while the layer is active',
    'Adds a delete entry to the layer: while it is active, PATH and everything below it do not exist in the view.',
    'strata layer hide node20 /tools/node/lib/legacy',
    async (ctx, [name, p]) => (await ctx.agent()).call('layer.hide', { name, path: p }),
  ),
  {
    name: 'layer reset',
    synopsis: "discard the layer's writable sublayer",
    description: 'Discards what tools wrote into the layer, back to what was captured.',
    positionals: [NAME],
    options: {},
    examples: ['strata layer reset node20'],
    async action(a, ctx) {
      const l = await (await ctx.agent()).call('layer.reset', { name: a.positionals[0] });
      ctx.print(l, `reset layer ${l.name}: writable sublayer discarded`);
      return 0;
    },
  },
  {
    name: 'layer export',
    synopsis: 'write the layer to FILE (.tar.gz)',
    description: 'Writes the layer to FILE, a .tar.gz that "strata layer import" reads on another machine.',
    positionals: [NAME, { name: 'FILE' }],
    options: {},
    examples: ['strata layer export node20 node20.tar.gz'],
    async action(a, ctx) {
      const [name, file] = a.positionals;
      const c = await ctx.agent();
      const r = await withProgress(
        c,
        `export ${name}`,
        () => process.stderr.write(`exporting ${name} to ${path.resolve(file)}...\n`),
        () => c.call('layer.export', { name, file: path.resolve(file) }),
      );
      ctx.print(r, `exported ${name} to ${r.file} (${r.bytes} bytes, sha256 ${r.sha256})`);
      return 0;
    },
  },
  {
    name: 'layer import',
    synopsis: 'add the layer FILE holds',
    description: 'Adds the layer held in FILE, written by "strata layer export".',
    positionals: [{ name: 'FILE' }],
    options: {},
    examples: ['strata layer import node20.tar.gz'],
    async action(a, ctx) {
      const file = path.resolve(a.positionals[0]);
      const c = await ctx.agent();
      const l = await withProgress(
        c,
        `import ${path.basename(file)}`,
        () => process.stderr.write(`importing ${file}...\n`),
        () => c.call('layer.import', { file }),
      );
      ctx.print(l, `imported layer ${l.name} ${l.version}`);
      return 0;
    },
  },
];
