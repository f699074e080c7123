/** The channel to the extension host: typed posts, checked arrivals, and the webview's saved state. */
import { HostMessage, WebviewMessage, isHostMessage } from '../protocol/webview';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

export function post(msg: WebviewMessage): void {
  api.postMessage(msg);
}

/** Calls `fn` with every well-formed host message; anything else is dropped (and logged to the devtools console). */
export function onHostMessage(fn: (m: HostMessage) => void): void {
  window.addEventListener('message', (e: MessageEvent) => {
    if (isHostMessage(e.data)) fn(e.data);
    else console.warn('strata layer editor: ignored a malformed message', e.data);
  });
}

export function saveState(state: unknown): void {
  api.setState(state);
}

export function loadState(): unknown {
  return api.getState();
}
