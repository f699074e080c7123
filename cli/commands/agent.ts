/** agent start, agent stop, status. */
import * as path from 'path';
import { connectOrStart, logFile } from '../../shared/client';
import { StrataError } from '../../shared/errors';
import { pidAlive } from '../../shared/paths';
import { AgentStopped, Command } from '../command';
import { runForeground } from '../foreground';
import { statusText } from '../output';
import { equalPriorityOverlaps } from '../../shared/overlaps';

export const agentCommands: Command[] = [
  {
    name: 'agent start',
    synopsis: 'start the agent for $STRATA_HOME',
    description:
      'Starts the agent for $STRATA_HOME in the background (every other command does this when needed), or\n' +
      "attached to this terminal with --foreground. With --listen it also accepts teammates' agents.",
    positionals: [],
    options: {
      foreground: { type: 'boolean', description: 'stay attached; Ctrl-C stops the agent' },
      listen: { type: 'string', value: 'HOST:PORT', description: "also accept teammates' agents on HOST:PORT" },
    },
    examples: ['strata agent start', 'strata agent start --listen 0.0.0.0:7451   # teammates dial this agent'],
    async action(a, ctx) {
      const listen = a.string('listen');
      const agentScript = path.join(ctx.dist, 'agent.js');
      const agentEnv = { ...process.env, STRATA_HOME: ctx.home, ...(listen ? { STRATA_LISTEN: listen } : {}) };
      if (a.flag('foreground')) return runForeground(agentScript, [], { env: agentEnv });
      const target = { home: ctx.home, socket: ctx.socket, agentScript };
      if (listen) {
        const running = await connectOrStart({ ...target, start: false }).catch(() => null);
        if (running) {
          running.close();
          throw new StrataError(
            'E_BAD_REQUEST',
            'the agent is already running without --listen',
            'Run "strata agent stop" first, then start it with --listen.',
          );
        }
      }
      const c = await connectOrStart({ ...target, start: true, env: agentEnv });
      try {
        const s = await c.call('status', {});
        const t = await c.call('team.status', {});
        ctx.print(
          { ...s, team: t },
          `agent running (pid ${s.pid}); log: ${logFile(ctx.home)}${t.listen ? `; accepting teammates on ws://${t.listen}` : ''}`,
        );
      } finally {
        c.close();
      }
      return 0;
    },
  },
  {
    name: 'agent stop',
    synopsis: 'unmount every view and stop the agent',
    description:
      'Unmounts every view and stops the agent, and waits until its process is gone. With --keep-views the\n' +
      'views keep serving (shells and editors inside them go on working) and the next agent takes them over.',
    positionals: [],
    options: {
      'keep-views': { type: 'boolean', description: 'leave the views mounted and serving, for the next agent' },
    },
    examples: ['strata agent stop', 'strata agent stop --keep-views   # restart without disturbing the views'],
    async action(a, ctx) {
      const c = await connectOrStart({
        home: ctx.home,
        socket: ctx.socket,
        agentScript: path.join(ctx.dist, 'agent.js'),
        start: false,
      }).catch(() => null);
      if (!c) {
        ctx.print({ stopped: false, running: false }, 'agent is not running');
        return 0;
      }
      let pid: number;
      try {
        pid = (await c.call('status', {})).pid;
        await c.call('agent.stop', a.flag('keep-views') ? { keepViews: true } : {}).catch(() => {});
      } finally {
        c.close();
      }
      // Wait until the process is gone, so the mounts are released when we return.
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline && pidAlive(pid)) await new Promise((r) => setTimeout(r, 50));
      if (pidAlive(pid)) {
        throw new StrataError(
          'E_AGENT_UNAVAILABLE',
          `agent pid ${pid} did not stop in 20 s`,
          `See ${logFile(ctx.home)}; "kill ${pid}" stops it (the next start clears its mounts).`,
        );
      }
      ctx.print({ stopped: true, pid }, `agent stopped (pid ${pid})`);
      return 0;
    },
  },
  {
    name: 'status',
    synopsis: 'agent, active layers, views',
    description:
      "Shows the agent's pid and home, the active layers, the number of layers and every view. It never\n" +
      'starts the agent: when it is not running, it says so and exits with status 3.',
    positionals: [],
    options: {},
    examples: ['strata status', 'strata status --json'],
    readOnly: true,
    async action(_a, ctx) {
      const c = await ctx.agent().catch((e) => {
        if (e instanceof AgentStopped) return null;
        throw e;
      });
      if (!c) {
        ctx.print({ running: false, home: ctx.home }, `agent stopped (home ${ctx.home}); "strata agent start" starts it`);
        return AgentStopped.EXIT;
      }
      const s = await c.call('status', {});
      const overlaps = equalPriorityOverlaps(s.layers);
      ctx.print({ running: true, ...s, overlaps }, statusText(s, overlaps));
      return 0;
    },
  },
];
