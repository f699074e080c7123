/** relay: checks its flags here, then runs the relay process (dist/relay.js) in the foreground. */
import * as path from 'path';
import { isRelayReport } from '../../protocol';
import { fromInfo } from '../../shared/client';
import { Command } from '../command';
import { runForeground } from '../foreground';
import { reportError } from '../output';

export const relayCommands: Command[] = [
  {
    name: 'relay',
    synopsis: 'run a standalone relay (no FUSE); wss:// with a certificate',
    description:
      "Runs a team relay in the foreground until Ctrl-C or SIGTERM. It keeps the team's state (with\n" +
      '--state-file, across restarts), so a late joiner catches up even when no teammate is online.',
    positionals: [],
    options: {
      listen: { type: 'string', value: 'HOST:PORT', required: true, description: 'where to accept agents (port 0: any free port)' },
      'secret-file': { type: 'string', value: 'FILE', required: true, description: "the team's shared secret (chmod 600)" },
      team: { type: 'string', value: 'TEAM', description: 'serve only this team (default: the first one to connect)' },
      'state-file': { type: 'string', value: 'FILE', description: "keep the team's state here" },
      'tls-cert': { type: 'string', value: 'PEM', with: 'tls-key', description: 'serve wss:// with this certificate' },
      'tls-key': { type: 'string', value: 'PEM', with: 'tls-cert', description: 'and this private key' },
    },
    examples: ['strata relay --listen 127.0.0.1:7450 --secret-file team.secret   # chmod 600 team.secret'],
    action(a, ctx) {
      const args = ['--listen', a.string('listen')!, '--secret-file', path.resolve(a.string('secret-file')!)];
      for (const name of ['team', 'state-file', 'tls-cert', 'tls-key']) {
        const v = a.string(name);
        if (v !== undefined) args.push(`--${name}`, v);
      }
      return runForeground(path.join(ctx.dist, 'relay.js'), args, {
        onMessage: (m) => {
          if (!isRelayReport(m)) return;
          if ('ready' in m) ctx.print({ url: m.ready.url, id: m.ready.id }, `relay ${m.ready.id} listening on ${m.ready.url}`);
          else reportError(fromInfo(m.error)); // the relay then exits with status 1
        },
      });
    },
  },
];
