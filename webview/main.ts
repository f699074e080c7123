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

/** The editor's whole state, and what changes it: one instance per page, made at start-up. */
class Editor {
  private loaded: LayerSpec | null = null;
  private model: FormModel | null = null;
  private active = false;
  private canRename = false;
  private dirty = false;
  /** The requestId of the save in flight. */
  private saving: number | null = null;
  private outsideChange = false;
  /** Shown above the form while it is kept open without a live agent. */
  private banner = '';
  private problems: FieldProblem[] = [];
  private nextId = 1;
  private lastValidate = 0;
  private validateTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly browsing = new Map<number, Target>();
  private statusText = '';

  /** `restored`: unsaved edits from before the view was hidden, used when that layer loads first. */
  constructor(
    private readonly app: HTMLElement,
    private readonly restored: Saved | null,
  ) {}

  private status(text: string): void {
    this.statusText = text;
    const el = document.getElementById('save-state');
    if (el) el.textContent = text;
  }

  private persist(): void {
    saveState(this.model && this.dirty ? { name: this.model.name, draft: this.model.draft } : null);
  }

  private validateSoon(): void {
    clearTimeout(this.validateTimer);
    this.validateTimer = setTimeout(() => {
      if (!this.model) return;
      this.lastValidate = this.nextId++;
      post({ type: 'validate', requestId: this.lastValidate, spec: specOf(this.model.draft) });
    }, 250);
  }

  private render(focusId?: string): void {
    const model = this.model;
    if (!model || !this.loaded) return;
    const header = [
      h(
        'header',
        {},
        h('h2', {}, 'Layer ', h('code', {}, model.name)),
        this.active ? h('span', { class: 'badge', title: 'Saving applies the change to the views at once' }, 'active') : null,
      ),
      this.banner ? h('div', { class: 'notice', role: 'status' }, this.banner) : null,
      this.outsideChange
        ? h(
            'div',
            { class: 'notice', role: 'status' },
            'This layer changed outside the editor. ',
            h('button', { type: 'button', class: 'link', onClick: () => this.reload() }, 'Load the saved version'),
            ' (discards your edits).',
          )
        : null,
    ];
    const form = renderForm(
      model,
      {
        edited: () => {
          this.dirty = true;
          this.persist();
          this.status('Unsaved changes');
          this.validateSoon();
        },
        restructured: (id) => {
          this.dirty = true;
          this.persist();
          this.render(id);
          this.validateSoon();
        },
        browse: (kind, target) => {
          const requestId = this.nextId++;
          this.browsing.set(requestId, target);
          post({ type: 'browse', requestId, kind, layer: model.name });
        },
        save: () => this.save(),
        revert: () => this.reload(),
      },
      header,
    );
    this.app.replaceChildren(form);
    showProblems(form, this.problems);
    this.status(this.saving !== null ? 'Saving…' : this.dirty && !this.statusText ? 'Unsaved changes' : this.statusText);
    if (focusId) document.getElementById(focusId)?.focus();
  }

  save(): void {
    if (!this.model || this.saving !== null) return;
    clearTimeout(this.validateTimer);
    this.saving = this.nextId++;
    this.status('Saving…');
    post({ type: 'save', requestId: this.saving, name: this.model.name, spec: specOf(this.model.draft) });
  }

  /** Drop the edits: show the layer as last loaded, and ask the host for the newest. */
  private reload(): void {
    this.dirty = false;
    this.outsideChange = false;
    this.problems = [];
    this.statusText = '';
    this.persist();
    if (this.model && this.loaded) {
      this.model.draft = draftOf(this.loaded);
      this.model.newMapping = { original: '', destination: '' };
      this.render();
    }
    post({ type: 'reload' });
  }

  private showNotice(text: string): void {
    this.loaded = null;
    this.model = null;
    this.app.replaceChildren(h('p', { class: 'note' }, text));
  }

  private onLoad(m: Extract<HostMessage, { type: 'load' }>): void {
    this.active = m.active;
    this.canRename = m.canRename;
    if (!m.layer) {
      if (this.model && this.dirty) {
        // Keep unsaved edits on screen (the agent is away, say); saving says why it fails.
        this.banner = `${m.notice ?? 'The layer is not available.'} Your edits are kept.`;
        this.render();
        return;
      }
      this.showNotice(m.notice ?? 'No layer selected.');
      return;
    }
    this.banner = '';
    const model = this.model;
    const same = model !== null && model.name === m.layer.name;
    if (same && this.dirty) {
      // Keep the user's edits; say so when the saved layer moved underneath them.
      this.outsideChange = this.outsideChange || !sameSpec(this.loaded, m.layer);
      this.loaded = m.layer;
      this.render();
      return;
    }
    if (same && !this.dirty && sameSpec(this.loaded, m.layer)) {
      // Our own save coming back, or a change elsewhere that left this layer alone.
      if (model.active !== this.active) {
        model.active = this.active;
        this.render();
      }
      return;
    }
    const another = model !== null && model.name !== m.layer.name;
    const keep = !model && this.restored && this.restored.name === m.layer.name ? this.restored.draft : null;
    this.loaded = m.layer;
    this.dirty = keep !== null;
    this.outsideChange = false;
    this.problems = [];
    this.statusText = '';
    this.model = {
      draft: keep ?? draftOf(m.layer),
      name: m.layer.name,
      active: this.active,
      canRename: this.canRename,
      newMapping: { original: '', destination: '' },
      newExclude: '',
      newDelete: '',
    };
    this.render();
    // Another layer starts at its top, not where the last one was scrolled to.
    if (another) window.scrollTo(0, 0);
    if (keep) {
      this.status('Unsaved changes restored');
      this.validateSoon();
    }
  }

  onMessage(m: HostMessage): void {
    switch (m.type) {
      case 'load':
        this.onLoad(m);
        break;
      case 'validated':
        if (m.requestId !== this.lastValidate || !this.model) return;
        this.problems = m.problems;
        showProblems(this.app, this.problems);
        break;
      case 'saved':
        if (m.requestId !== this.saving) return;
        this.saving = null;
        this.loaded = m.layer;
        this.dirty = false;
        this.outsideChange = false;
        this.problems = [];
        if (this.model) this.model.draft = draftOf(m.layer);
        this.persist();
        this.render();
        this.status('Saved');
        break;
      case 'saveFailed': {
        if (m.requestId !== this.saving) return;
        this.saving = null;
        this.problems = m.problems;
        showProblems(this.app, this.problems);
        const n = this.problems.length;
        this.status(`Not saved: ${n} problem${n === 1 ? '' : 's'}`);
        this.app.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
        break;
      }
      case 'picked':
        this.onPicked(m);
        break;
      case 'error':
        if (m.requestId !== undefined && m.requestId === this.saving) this.saving = null;
        if (this.model) this.status(m.message);
        else this.showNotice(m.message);
        break;
    }
  }

  /** A browse result: into its row (an edit) or its add-row (not yet an edit). */
  private onPicked(m: Extract<HostMessage, { type: 'picked' }>): void {
    const target = this.browsing.get(m.requestId);
    this.browsing.delete(m.requestId);
    if (!target || !this.model) return;
    if (m.value === null) {
      if (m.problem) this.status(m.problem);
      return;
    }
    setTarget(this.model, target, m.value);
    const input = document.getElementById(targetInputId(target)) as HTMLInputElement | null;
    if (input) {
      input.value = m.value;
      input.focus();
    }
    if (target.index >= 0) {
      this.dirty = true;
      this.persist();
      this.validateSoon();
    }
  }
}

function restoredState(): Saved | null {
  const s = loadState() as Partial<Saved> | undefined;
  return s && typeof s.name === 'string' && s.draft ? (s as Saved) : null;
}

const editor = new Editor(document.getElementById('app')!, restoredState());
onHostMessage((m) => editor.onMessage(m));
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 's') {
    e.preventDefault();
    editor.save();
  }
});
post({ type: 'ready', v: WEBVIEW_PROTOCOL_VERSION });
