// Starting, stopping and leaving the built-in sandbox, from the sandbox bar, the empty
// state or the clients view. Failures go to a banner.

import { api, toCommandError } from '../api';
import { h } from '../dom';
import { errorLine } from '../errors';
import { t, tParts } from '../i18n/index';
import type { ClientsView } from '../views/clients';
import { confirmDialog, openDialog, toast } from '../views/dialogs';
import type { SandboxBar } from '../views/sandbox';
import type { Banners } from './banners';

export interface SandboxFlowOptions {
  /** Where the "Try the sandbox" buttons are (disabled while it starts). */
  root: HTMLElement;
  bar: SandboxBar;
  clients: ClientsView;
  banners: Banners;
  /** The "Add connection" button of the started dialog. */
  openAddConnection: () => void;
}

/** The emulator's fixed demo accounts (crates/emulator): identifiers to type, not words. */
const DEMO = {
  faUser: 'demo@example.com',
  faPassword: 'demo',
  fedexKey: 'demo-child-key',
  fedexSecret: 'demo-child-secret',
  iotUser: 'operator',
  iotPassword: 'operator-pass',
} as const;

export class SandboxFlow {
  constructor(private readonly opts: SandboxFlowOptions) {}

  async start(): Promise<void> {
    const { root, bar, clients } = this.opts;
    const buttons = Array.from(root.querySelectorAll<HTMLButtonElement>('[data-testid="sandbox-start"]'));
    for (const b of buttons) b.disabled = true;
    try {
      const info = await api.startSandbox();
      bar.setRunning(info);
      const d = openDialog({ title: t('sandbox.dialog.title'), testid: 'sandbox-dialog' });
      const code = (text: string) => h('code', {}, text);
      d.body.append(
        h(
          'p',
          {},
          ...tParts('sandbox.dialog.at', {
            url: code(info.base_url),
            clients: info.clients.join(', ') || t('common.none'),
          }),
        ),
        ...(info.skipped.length
          ? [h('p', { class: 'hint' }, t('sandbox.dialog.skipped', { names: info.skipped.join(', ') }))]
          : []),
        h(
          'dl',
          { class: 'kv' },
          h('dt', {}, t('sandbox.dialog.faSignIn')),
          h('dd', {}, code(DEMO.faUser), ' / ', code(DEMO.faPassword)),
          h('dt', {}, t('sandbox.dialog.fedexChild')),
          h(
            'dd',
            {},
            ...tParts('sandbox.dialog.fedexChildValue', { key: code(DEMO.fedexKey), secret: code(DEMO.fedexSecret) }),
          ),
          h('dt', {}, t('sandbox.dialog.iot')),
          h('dd', {}, code(DEMO.iotUser), ' / ', code(DEMO.iotPassword)),
        ),
        h('p', { class: 'hint' }, t('sandbox.dialog.hint')),
      );
      const go = h('button', { type: 'button', class: 'btn btn-primary' }, t('header.add'));
      go.addEventListener('click', () => {
        d.close();
        this.opts.openAddConnection();
      });
      d.body.append(h('div', { class: 'dialog-actions' }, go));
      void clients.reload();
    } catch (e) {
      this.failed(e);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  async stop(): Promise<void> {
    try {
      await api.stopSandbox();
      this.opts.bar.setRunning(null);
      toast(t('sandbox.stopped'));
    } catch (e) {
      this.failed(e);
    }
  }

  async leave(): Promise<void> {
    const ok = await confirmDialog({
      title: t('sandbox.leave.title'),
      message: t('sandbox.leave.message'),
      okLabel: t('sandbox.leave'),
      danger: true,
    });
    if (!ok) return;
    try {
      const report = await api.leaveSandbox();
      this.opts.bar.setRunning(null);
      const n = report.connections.length;
      const m = report.clients.length;
      toast(
        t('sandbox.left', {
          connections: t(n === 1 ? 'sandbox.left.connections.one' : 'sandbox.left.connections.other', { n }),
          clients: t(m === 1 ? 'sandbox.left.clients.one' : 'sandbox.left.clients.other', { n: m }),
        }),
      );
      if (!this.opts.clients.el.hidden) void this.opts.clients.reload();
    } catch (e) {
      this.failed(e);
    }
  }

  private failed(e: unknown): void {
    this.opts.banners.show(errorLine(toCommandError(e)), 'error');
  }
}
