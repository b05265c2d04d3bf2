// The sandbox bar under the top bar: whether the built-in sandbox runs (and where),
// with Start / Stop and "Leave the sandbox". Shown while it runs, or while sandbox
// connections are in the list (they cannot refresh while it is stopped).

import type { SandboxInfo } from '../bindings/SandboxInfo';
import { h, setText } from '../dom';
import { t } from '../i18n/index';

export interface SandboxBarOptions {
  onStart: () => Promise<void> | void;
  onStop: () => Promise<void> | void;
  onLeave: () => Promise<void> | void;
}

/** `http://127.0.0.1:40123` → `127.0.0.1:40123`. */
export function sandboxAddress(info: SandboxInfo): string {
  return info.base_url.replace(/^https?:\/\//, '');
}

export class SandboxBar {
  readonly el: HTMLElement;
  private readonly text: HTMLElement;
  private readonly start: HTMLButtonElement;
  private readonly stop: HTMLButtonElement;
  private readonly leave: HTMLButtonElement;
  private running: SandboxInfo | null = null;
  private hasData = false;

  constructor(opts: SandboxBarOptions) {
    const button = (testid: string, label: string, run: () => Promise<void> | void) => {
      const b = h('button', { type: 'button', class: 'btn btn-row', 'data-testid': testid }, label);
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await run();
        } finally {
          b.disabled = false;
        }
      });
      return b;
    };
    this.text = h('span', { 'data-testid': 'sandbox-state' });
    this.start = button('sandbox-bar-start', t('sandbox.bar.start'), opts.onStart);
    this.stop = button('sandbox-stop', t('sandbox.bar.stop'), opts.onStop);
    this.leave = button('sandbox-leave', t('sandbox.leave'), opts.onLeave);
    this.el = h(
      'div',
      { class: 'sandbox-bar', role: 'status', 'data-testid': 'sandbox-bar' },
      h('span', { class: 'badge badge-sandbox' }, t('sandbox.badge')),
      this.text,
      this.start,
      this.stop,
      this.leave,
    );
    this.render();
  }

  /** The running sandbox (`AppInfo.sandbox`), or null when it is stopped. */
  setRunning(info: SandboxInfo | null): void {
    this.running = info;
    this.render();
  }

  /** Whether the list holds sandbox connections. */
  setHasData(has: boolean): void {
    if (this.hasData === has) return;
    this.hasData = has;
    this.render();
  }

  get isRunning(): boolean {
    return this.running !== null;
  }

  private render(): void {
    const running = this.running;
    const hidden = running === null && !this.hasData;
    if (this.el.hidden !== hidden) this.el.hidden = hidden;
    this.el.dataset.state = running ? 'running' : 'stopped';
    setText(
      this.text,
      running ? t('sandbox.bar.running', { address: sandboxAddress(running) }) : t('sandbox.bar.stopped'),
    );
    this.start.hidden = running !== null;
    this.stop.hidden = running === null;
  }
}
