/**
 * The embedded default: two demo layers of a toolchain, an in-place view of a project folder, and a
 * shell that was started before any switch and sees each switch at once. Everything goes through
 * the real CLI and agent; Ctrl-C or the end of the run stops the agent and unmounts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';

const dir = process.env.STRATA_DEMO_DIR ?? path.join(os.tmpdir(), 'strata-demo');
const home = path.join(dir, 'home');
const project = path.join(dir, 'project');
const cli = path.join(__dirname, 'cli.js');
const env = { ...process.env, STRATA_HOME: home };

function strata(...args: string[]): string {
  const out = execFileSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' }).trim();
  console.log(`  $ strata ${args.join(' ')}${out ? '\n    ' + out.split('\n').join('\n    ') : ''}`);
  return out;
}

function writeTool(root: string, version: string): void {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bin', 'tool'), `#!/bin/sh\necho "tool ${version} (from ${root.includes('layer') ? 'a Strata layer' : 'the project'})"\n`, { mode: 0o755 });
}

async function main(): Promise<void> {
  // Start clean: a previous demo's agent and mount must not linger.
  if (fs.existsSync(home)) {
    try {
      execFileSync(process.execPath, [cli, 'agent', 'stop'], { env, stdio: 'ignore' });
    } catch {
      /* not running */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  writeTool(project, '1.0');
  fs.writeFileSync(path.join(project, 'README'), 'the demo project\n');
  writeTool(path.join(dir, 'layer-src', 'v2'), '2.0');
  writeTool(path.join(dir, 'layer-src', 'v3'), '3.0');

  console.log(`Strata demo in ${dir} (STRATA_HOME=${home})\n`);
  console.log('1. Capture two versions of a toolchain as layers');
  strata('layer', 'create', 'tool-2', '--from', path.join(dir, 'layer-src', 'v2'), '--version', '2.0');
  strata('layer', 'create', 'tool-3', '--from', path.join(dir, 'layer-src', 'v3'), '--version', '3.0');
  console.log('\n2. Serve the project folder through Strata, in place');
  strata('view', 'add', project);

  console.log('\n3. A shell started now, with its working directory inside the view');
  const shell = spawn('bash', ['--noprofile', '--norc'], { cwd: path.join(project, 'bin'), stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  shell.stdout.on('data', (d) => (buf += String(d)));
  const inShell = async (cmd: string): Promise<void> => {
    buf = '';
    shell.stdin.write(`${cmd}; echo __end__\n`);
    while (!buf.includes('__end__')) await new Promise((r) => setTimeout(r, 10));
    console.log(`  [shell, cwd ${project}/bin] $ ${cmd}\n    ${buf.replace('__end__', '').trim()}`);
  };
  await inShell('./tool');

  console.log('\n4. Switch live: the same shell sees each switch at once, no PATH edits, no reload');
  strata('activate', 'tool-2');
  await inShell('./tool');
  strata('swap', 'tool-2', 'tool-3');
  await inShell('./tool');
  strata('deactivate', 'tool-3');
  await inShell('./tool');
  shell.stdin.end();

  console.log('\n5. State');
  strata('status');
  if (process.env.STRATA_DEMO_KEEP) {
    console.log(`\nThe agent keeps running (STRATA_DEMO_KEEP). Stop it with: STRATA_HOME=${home} node ${cli} agent stop`);
    return;
  }
  console.log('\n6. Stop the agent: the view unmounts and the project folder is as it was');
  strata('agent', 'stop');
  console.log(`  ${path.join(project, 'bin', 'tool')}: ${fs.readFileSync(path.join(project, 'bin', 'tool'), 'utf8').split('\n')[1]}`);
}

process.on('SIGINT', () => {
  try {
    execFileSync(process.execPath, [cli, 'agent', 'stop'], { env, stdio: 'ignore' });
  } finally {
    process.exit(130);
  }
});

main().catch((e) => {
  console.error(`demo failed: ${(e as Error).message}`);
  try {
    execFileSync(process.execPath, [cli, 'agent', 'stop'], { env, stdio: 'ignore' });
  } catch {
    /* already stopped */
  }
  process.exit(1);
});
