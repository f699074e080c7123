/** The "Strata" log channel: one LogOutputChannel, each line prefixed with its [component]. */
import * as vscode from 'vscode';

export interface Logger {
  trace(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export class Log implements vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('Strata', { log: true });
  }

  for(component: string): Logger {
    const ch = this.channel;
    const p = `[${component}] `;
    return {
      trace: (m) => ch.trace(p + m),
      info: (m) => ch.info(p + m),
      warn: (m) => ch.warn(p + m),
      error: (m) => ch.error(p + m),
    };
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
