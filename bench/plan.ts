/** The file system benchmark's command line and how much each run does (full or --quick). */
import * as os from 'os';
import * as path from 'path';
import { defaultRealSource } from './realtree';

const HELP = `usage: npm run bench -- [--quick] [--json] [--dir PARENT] [--real DIR]

  --quick        2k synthetic files, 32 MiB, about 3k files of the real tree, fewer repetitions
  --json         print exactly one JSON object on stdout (progress goes to stderr)
  --dir PARENT   where to create the temporary directory (default: ${os.tmpdir()});
                 it must be a local file system that kernel overlayfs accepts as upper dir
  --real DIR     the tree copied as the real-shape data set (default: this checkout's
                 node_modules); it is only read
`;

export interface Plan {
  files: number;
  bigMiB: number;
  /** Files copied from the real tree (about; whole top-level entries), null for all of it. */
  realFiles: number | null;
  /** The real set's write workload copies the package with the most files up to this many. */
  writeFiles: number;
  metaRuns: number;
  metaWarmup: number;
  gitRuns: number;
  coldReps: number;
  readRuns: number;
  writeRuns: number;
  execRuns: number;
  execWarmup: number;
  nodeRuns: number;
  switchIters: number;
  treeSwitchIters: number;
}

export const FULL: Plan = {
  files: 10000,
  bigMiB: 256,
  realFiles: null,
  writeFiles: 2000,
  metaRuns: 10,
  metaWarmup: 2,
  gitRuns: 10,
  coldReps: 3,
  readRuns: 5,
  writeRuns: 7,
  execRuns: 200,
  execWarmup: 20,
  nodeRuns: 30,
  switchIters: 50,
  treeSwitchIters: 10,
};
export const QUICK: Plan = {
  files: 2000,
  bigMiB: 32,
  realFiles: 3000,
  writeFiles: 500,
  metaRuns: 5,
  metaWarmup: 1,
  gitRuns: 5,
  coldReps: 1,
  readRuns: 3,
  writeRuns: 3,
  execRuns: 50,
  execWarmup: 5,
  nodeRuns: 10,
  switchIters: 20,
  treeSwitchIters: 4,
};

export interface Args {
  quick: boolean;
  json: boolean;
  dir: string;
  real: string;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, json: false, dir: os.tmpdir(), real: defaultRealSource() };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--quick') a.quick = true;
    else if (x === '--json') a.json = true;
    else if (x === '--dir') a.dir = path.resolve(argv[++i] ?? '');
    else if (x.startsWith('--dir=')) a.dir = path.resolve(x.slice(6));
    else if (x === '--real') a.real = path.resolve(argv[++i] ?? '');
    else if (x.startsWith('--real=')) a.real = path.resolve(x.slice(7));
    else if (x === '--help' || x === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${x}\n\n${HELP}`);
      process.exit(2);
    }
  }
  return a;
}
