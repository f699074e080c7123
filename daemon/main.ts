/**
 * The agent process: `node dist/agent.js` (normally started by `strata agent start`). Drives the
 * views' servers and serves the control socket; unmounts the views on SIGTERM, SIGINT and SIGHUP
 * (`agent stop --keep-views` leaves them serving; a killed agent leaves them serving too).
 */
import { Agent } from './agent';
import { ControlServer } from './server';
import * as fs from 'fs';
import { agentRecord, pidAlive, readAgentRecord, socketPath, strataHome } from '../shared/paths';
import { TeamService } from './team/service';
import { StrataError } from '../shared/errors';
import { importLimitsFromEnv } from './archive';
import { warmFromEnv } from './fuse/views';

// Started in the background, the agent logs to agent.log: write each line on its own and ignore
// failures, so a full disk loses lines instead of breaking the stream for good.
const logIsFile = fs.fstatSync(2).isFile();

function log(msg: string): void {
  const line = `${new Date().toISOString()} ${msg}\n`;
  if (!logIsFile) {
    process.stderr.write(line);
    return;
  }
  try {
    fs.writeSync(2, line);
  } catch {
    /* nowhere to report it */
  }
}

async function main(): Promise<void> {
  const home = strataHome();
  const sock = socketPath(home);
  const cacheTimeout = process.env.STRATA_CACHE_TIMEOUT ? Number(process.env.STRATA_CACHE_TIMEOUT) : undefined;
  const agent = new Agent({ home, socket: sock, log, cacheTimeout, importLimits: importLimitsFromEnv(), warm: warmFromEnv() });
  const heartbeatMs = Number(process.env.STRATA_TEAM_HEARTBEAT_MS) || undefined;
  const team = new TeamService(agent, home, log, {
    listenOverride: process.env.STRATA_LISTEN || undefined,
    limits: heartbeatMs ? { heartbeatMs } : undefined,
  });
  const server = new ControlServer(agent, team, sock, log);

  let stopping = false;
  const stop = async (why: string, keepViews = false): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`[agent] stopping (${why}${keepViews ? ', views keep serving' : ''})`);
    server.close();
    await team.stop();
    await agent.stop(keepViews);
    if (readAgentRecord(home)?.pid === process.pid) fs.rmSync(agentRecord(home), { force: true });
    log('[agent] stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => void stop('SIGHUP'));
  // An exception escaping would kill the agent: the views would keep serving, but nothing would switch them.
  process.on('uncaughtException', (e) => log(`[agent] uncaught: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log(`[agent] unhandled rejection: ${(e as Error)?.stack ?? e}`));
  server.onStop((keepViews) => void stop('agent.stop', keepViews));

  // A second agent on the same home must fail before it touches any mount, even one started with
  // another TMPDIR (and so another socket path).
  const rec = readAgentRecord(home);
  if (rec && rec.pid !== process.pid && pidAlive(rec.pid)) {
    throw new Error(`another agent (pid ${rec.pid}) already serves ${home} on ${rec.socket}`);
  }
  await server.claim();
  await agent.start();
  await team.start();
  await server.listen();
  fs.writeFileSync(agentRecord(home), JSON.stringify({ pid: process.pid, socket: sock }) + '\n', { mode: 0o600 });
  fs.chmodSync(agentRecord(home), 0o600);
  log(`[agent] pid ${process.pid} serving ${sock} for ${home}`);
  void agent.views.warmRestored().catch((e: Error) => log(`[agent] warming restored views: ${e.message}`));
  if (process.send) process.send('ready');
}

main().catch((e) => {
  const what = e instanceof StrataError ? `${e.code}: ${e.message}${e.hint ? `. ${e.hint}` : ''}` : (e as Error).message;
  log(`[agent] failed to start: ${what}`);
  process.exit(1);
});
