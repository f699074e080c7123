/**
 * The Layer Editor (webview side). Posts `ready` first and waits for the host's `load`; checks the
 * draft with the agent's own validation as the user types, saves on request, and puts every problem
 * under its field. Unsaved edits survive the view being hidden (webview state).
 */
import { LayerSpec } from '../protocol/layer';
import { FieldProblem, HostMessage, WEBVIEW_PROTOCOL_VERSION } from '../protocol/webview';
import { h } from './dom';
import { Draft, draftOf, sameSpec, specOf } from './draft';
import { FormModel, Target, renderForm, setTarget, showProblems, targetInputId } from './form';
import { loadState, onHostMessage, post, saveState } from './host';

interface Saved {
  name: string;
  draft: Draft;
}

const app = document.getElementById('app')!;
let loaded: LayerSpec | null = null;
let model: FormModel | null = null;
let active = false;
let canRename = false;
let dirty = false;
let saving: number | null = null;
let outsideChange = false;
/** Shown above the form while it is kept open without a live agent. */
let banner = '';
let problems: FieldProblem[] = [];
let nextId = 1;
let lastValidate = 0;
let validateTimer: ReturnType<typeof setTimeout> | undefined;
const browsing = new Map<number, Target>();
const restored = ((): Saved | null => {
  const s = loadState() as Partial<Saved> | undefined;
  return s && typeof s.name === 'string' && s.draft ? (s as Saved) : null;
})();

let statusText = '';

function status(text: string): void {
  statusText = text;
  const el = document.getElementById('save-state');
  if (el) el.textContent = text;
}

function persist(): void {
  saveState(model && dirty ? { name: model.name, draft: model.draft } : null);
}

function validateSoon(): void {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(() => {
    if (!model) return;
    lastValidate = nextId++;
    post({ type: 'validate', requestId: lastValidate, spec: specOf(model.draft) });
  }, 250);
}

function render(focusId?: string): void {
  if (!model || !loaded) return;
  const header = [
    h('header', {},
      h('h2', {}, 'Layer ', h('code', {}, model.name)),
      active ? h('span', { class: 'badge', title: 'Saving applies the change to the views at once' }, 'active') : null),
    banner ? h('div', { class: 'notice', role: 'status' }, banner) : null,
    outsideChange
      ? h('div', { class: 'notice', role: 'status' }, 'This layer changed outside the editor. ',
        h('button', { type: 'button', class: 'link', onClick: reload }, 'Load the saved version'), ' (discards your edits).')
      : null,
  ];
  const form = renderForm(model, {
    edited: () => {
      dirty = true;
      persist();
      status('Unsaved changes');
      validateSoon();
    },
    restructured: (id) => {
      dirty = true;
      persist();
      render(id);
      validateSoon();
    },
    browse: (kind, target) => {
      const requestId = nextId++;
      browsing.set(requestId, target);
      post({ type: 'browse', requestId, kind, layer: model!.name });
    },
    save,
    revert: reload,
  }, header);
  app.replaceChildren(form);
  showProblems(form, problems);
  status(saving !== null ? 'Saving…' : dirty && !statusText ? 'Unsaved changes' : statusText);
  if (focusId) document.getElementById(focusId)?.focus();
}

function save(): void {
  if (!model || saving !== null) return;
  clearTimeout(validateTimer);
  saving = nextId++;
  status('Saving…');
  post({ type: 'save', requestId: saving, name: model.name, spec: specOf(model.draft) });
}

/** Drop the edits: show the layer as last loaded, and ask the host for the newest. */
function reload(): void {
  dirty = false;
  outsideChange = false;
  problems = [];
  statusText = '';
  persist();
  if (model && loaded) {
    model.draft = draftOf(loaded);
    model.newMapping = { original: '', destination: '' };
    render();
  }
  post({ type: 'reload' });
}

function showNotice(text: string): void {
  loaded = null;
  model = null;
  app.replaceChildren(h('p', { class: 'note' }, text));
}

function onLoad(m: Extract<HostMessage, { type: 'load' }>): void {
  active = m.active;
  canRename = m.canRename;
  if (!m.layer) {
    if (model && dirty) {
      // Keep unsaved edits on screen (the agent is away, say); saving says why it fails.
      banner = `${m.notice ?? 'The layer is not available.'} Your edits are kept.`;
      render();
      return;
    }
    showNotice(m.notice ?? 'No layer selected.');
    return;
  }
  banner = '';
  const same = model !== null && model.name === m.layer.name;
  if (same && dirty) {
    // Keep the user's edits; say so when the saved layer moved underneath them.
    outsideChange = outsideChange || !sameSpec(loaded, m.layer);
    loaded = m.layer;
    render();
    return;
  }
  if (same && !dirty && sameSpec(loaded, m.layer)) {
    // Our own save coming back, or a change elsewhere that left this layer alone.
    if (model!.active !== active) {
      model!.active = active;
      render();
    }
    return;
  }
  const keep = !model && restored && restored.name === m.layer.name ? restored.draft : null;
  loaded = m.layer;
  dirty = keep !== null;
  outsideChange = false;
  problems = [];
  statusText = '';
  model = { draft: keep ?? draftOf(m.layer), name: m.layer.name, active, canRename, newMapping: { original: '', destination: '' }, newExclude: '', newDelete: '' };
  render();
  if (keep) {
    status('Unsaved changes restored');
    validateSoon();
  }
}

onHostMessage((m) => {
  switch (m.type) {
    case 'load':
      onLoad(m);
      break;
    case 'validated':
      if (m.requestId !== lastValidate || !model) return;
      problems = m.problems;
      showProblems(app, problems);
      break;
    case 'saved':
      if (m.requestId !== saving) return;
      saving = null;
      loaded = m.layer;
      dirty = false;
      outsideChange = false;
      problems = [];
      if (model) model.draft = draftOf(m.layer);
      persist();
      render();
      status('Saved');
      break;
    case 'saveFailed': {
      if (m.requestId !== saving) return;
      saving = null;
      problems = m.problems;
      showProblems(app, problems);
      status(`Not saved: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
      app.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
      break;
    }
    case 'picked': {
      const target = browsing.get(m.requestId);
      browsing.delete(m.requestId);
      if (!target || !model) return;
      if (m.value === null) {
        if (m.problem) status(m.problem);
        return;
      }
      setTarget(model, target, m.value);
      const input = document.getElementById(targetInputId(target)) as HTMLInputElement | null;
      if (input) {
        input.value = m.value;
        input.focus();
      }
      if (target.index >= 0) {
        dirty = true;
        persist();
        validateSoon();
      }
      break;
    }
    case 'error':
      if (m.requestId !== undefined && m.requestId === saving) saving = null;
      if (model) status(m.message);
      else showNotice(m.message);
      break;
  }
});

document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 's') {
    e.preventDefault();
    save();
  }
});

post({ type: 'ready', v: WEBVIEW_PROTOCOL_VERSION });
