/**
 * Who a process is, read from /proc: its command line and its parents, and which of VS Code's own
 * language servers it belongs to (so it can be restarted through that extension's own command).
 * Pure but for the reads of /proc, so the unit tests give it a fake one.
 */
import * as fs from 'fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** argv, as /proc/PID/cmdline has it ([] when it cannot be read). */
  argv: string[];
}

export type ReadProc = (pid: number) => ProcInfo | null;

export const readProc: ReadProc = (pid) => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return { pid, ppid, argv };
  } catch {
    return null; // gone, or not ours to read
  }
};

/** The process and its ancestors, nearest first (at most 32, stopping at pid 1). */
export function ancestry(pid: number, read: ReadProc = readProc): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (let p = pid; p > 1 && out.length < 32;) {
    const info = read(p);
    if (!info) break;
    out.push(info);
    p = info.ppid;
  }
  return out;
}

/** A language server VS Code runs through an extension, and the commands that restart it (the first one registered is used). */
export interface KnownServer {
  name: string;
  /** Matched against each argument of the process's command line. */
  match: RegExp;
  commands: string[];
}

export const KNOWN_SERVERS: readonly KnownServer[] = [
  { name: 'TypeScript server', match: /(^|[/\\])(tsserver|typingsInstaller)(\.js)?$/, commands: ['typescript.restartTsServer'] },
  { name: 'ESLint server', match: /eslintServer(\.js)?$|[/\\]eslint[/\\]/, commands: ['eslint.restart'] },
  { name: 'rust-analyzer', match: /(^|[/\\])rust-analyzer$/, commands: ['rust-analyzer.restartServer'] },
  {
    name: 'Python language server',
    match: /pylance|pyright|jedi-language-server|python-lsp-server|pylsp/i,
    commands: ['python.analysis.restartLanguageServer', 'python.restartLanguageServer'],
  },
  {
    name: 'Java language server',
    match: /jdt[.-]ls|org\.eclipse\.jdt\.ls|redhat\.java/,
    commands: ['java.server.restart', 'java.clean.workspace'],
  },
  { name: 'Go language server (gopls)', match: /(^|[/\\])gopls$/, commands: ['go.languageserver.restart'] },
  { name: 'clangd', match: /(^|[/\\])clangd(-\d+)?$/, commands: ['clangd.restart'] },
];

/** The known server a process (or the parent that started it, below the extension host) belongs to. */
export function knownServer(chain: readonly ProcInfo[], hostPid: number): KnownServer | undefined {
  if (!chain.some((p) => p.pid === hostPid)) return undefined;
  for (const p of chain) {
    if (p.pid === hostPid) return undefined;
    const s = KNOWN_SERVERS.find((k) => p.argv.some((a) => k.match.test(a)));
    if (s) return s;
  }
  return undefined;
}

/** "node /x/tsserver.js --serverMode …" cut to a readable length. */
export function commandLine(info: ProcInfo | undefined, fallback: string): string {
  const line = info?.argv.join(' ') || fallback;
  return line.length > 120 ? `${line.slice(0, 117)}…` : line;
}
