/**
 * Questions that need an answer before anything happens: modal dialogs (reverting a team-wide
 * change, saving an edit to a team layer) and the inputs and picks of multi-step commands. Each
 * goes through one function here, so the extension-host tests can answer them in place of a person
 * (`StrataApi.answerQuestions`, `StrataApi.answerInputs`).
 */
import * as vscode from 'vscode';

export type Answerer = (message: string, detail: string, choices: readonly string[]) => string | undefined;

/** An input box or a quick pick as a test sees it; `invalid` is set when its last answer was refused. */
export interface Prompt {
  kind: 'input' | 'pick';
  title?: string;
  prompt?: string;
  value?: string;
  /** A pick's item labels, without their icons. */
  items?: string[];
  invalid?: string;
}
/** Returns the text typed, or the label of the item picked; undefined = Escape. */
export type InputAnswerer = (p: Prompt) => string | undefined;

let answerer: Answerer | null = null;
let inputAnswerer: InputAnswerer | null = null;

/** Tests only: answer every question with `fn` instead of showing it (null: show them again). */
export function answerQuestions(fn: Answerer | null): void {
  answerer = fn;
}

/** Tests only: answer input boxes and quick picks with `fn` (null: show them again). */
export function answerInputs(fn: InputAnswerer | null): void {
  inputAnswerer = fn;
}

/** Ask, modally; resolves with the choice, or undefined when the dialog was dismissed. */
export async function ask(message: string, detail: string, ...choices: string[]): Promise<string | undefined> {
  if (answerer) return answerer(message, detail, choices);
  return vscode.window.showWarningMessage(message, { modal: true, detail }, ...choices);
}

/** showInputBox; a test's answer is validated as typing it would be (a refused one is asked again). */
export async function input(opts: vscode.InputBoxOptions): Promise<string | undefined> {
  if (!inputAnswerer) return vscode.window.showInputBox(opts);
  let invalid: string | undefined;
  for (let tries = 0; tries < 5; tries++) {
    const v = inputAnswerer({ kind: 'input', title: opts.title, prompt: opts.prompt, value: opts.value, invalid });
    if (v === undefined) return undefined;
    const r = await opts.validateInput?.(v);
    invalid = typeof r === 'string' ? r || undefined : r?.message;
    if (!invalid) return v;
  }
  return undefined;
}

const plain = (label: string) => label.replace(/^\$\([^)]*\)\s*/, '');

/** showQuickPick of one item; a test answers with an item's label (icons left out). */
export async function pick<T extends vscode.QuickPickItem>(items: T[], opts: vscode.QuickPickOptions): Promise<T | undefined> {
  if (!inputAnswerer) return vscode.window.showQuickPick(items, opts);
  const labels = items.map((i) => plain(i.label));
  const v = inputAnswerer({ kind: 'pick', title: opts.title, prompt: opts.placeHolder, items: labels });
  return v === undefined ? undefined : items[labels.indexOf(v)];
}
