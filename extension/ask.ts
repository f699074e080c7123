/**
 * Questions that need an answer before anything happens (a modal dialog): reverting a team-wide
 * change, saving an edit to a team layer. One function, so the extension-host tests can answer
 * them in place of a person (`StrataApi.answerQuestions`).
 */
import * as vscode from 'vscode';

export type Answerer = (message: string, detail: string, choices: readonly string[]) => string | undefined;

let answerer: Answerer | null = null;

/** Tests only: answer every question with `fn` instead of showing it (null: show them again). */
export function answerQuestions(fn: Answerer | null): void {
  answerer = fn;
}

/** Ask, modally; resolves with the choice, or undefined when the dialog was dismissed. */
export async function ask(message: string, detail: string, ...choices: string[]): Promise<string | undefined> {
  if (answerer) return answerer(message, detail, choices);
  return vscode.window.showWarningMessage(message, { modal: true, detail }, ...choices);
}
