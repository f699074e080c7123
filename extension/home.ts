/** Where the agent lives: STRATA_HOME from the setting, else the environment, else the default. */
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { findSocket, strataHome } from '../shared/paths';
import { SETTINGS } from './constants';

export interface AgentLocation {
  home: string;
  socket: string;
  /** The bundled agent, started detached when nothing answers on the socket. */
  agentScript: string;
  /** Which source chose the home, for the log. */
  source: 'setting' | 'environment' | 'default';
}

export function locateAgent(extensionPath: string): AgentLocation {
  const setting = vscode.workspace.getConfiguration(SETTINGS.section).get<string>(SETTINGS.home, '').trim();
  let home: string;
  let source: AgentLocation['source'];
  if (setting) {
    home = path.resolve(setting.replace(/^~(?=$|\/)/, os.homedir()));
    source = 'setting';
  } else {
    home = strataHome(process.env);
    source = process.env.STRATA_HOME ? 'environment' : 'default';
  }
  return { home, socket: findSocket(home), agentScript: path.join(extensionPath, 'dist', 'agent.js'), source };
}
