// Starting, stopping and leaving the built-in sandbox, from the sandbox bar, the empty
// state or the clients view. Failures go to a banner.

import { api, toCommandError } from '../api';
import { h } from '../dom';
import { errorLine } from '../errors';
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

export class SandboxFlow {
  constructor(private readonly opts: SandboxFlowOptions) {}

  async start(): Promise<void> {
    const { root, bar, clients } = this.opts;
    const buttons = Array.from(root.querySelectorAll<HTMLButtonElement>('[data-testid="sandbox-start"]'));
    for (const b of buttons) b.disabled = true;
    try {
      const info = await api.startSandbox();
      bar.setRunning(info);
      const d = openDialog({ title: 'The sandbox is running', testid: 'sandbox-dialog' });
      d.body.append(
        h(
          'p',
          {},
          'Local emulators answer at ',
          h('code', {}, info.base_url),
          ' (a free port, new on every start). Sandbox clients pointing there: ',
          info.clients.join(', ') || 'none',
          '.',
        ),
        ...(info.skipped.length
          ? [h('p', { class: 'hint' }, "Not the sandbox's, so left as they are: ", info.skipped.join(', '), '.')]
          : []),
        h(
          'dl',
          { class: 'kv' },
          h('dt', {}, 'FlowAccount sign-in'),
          h('dd', {}, h('code', {}, 'demo@example.com'), ' / ', h('code', {}, 'demo')),
          h('dt', {}, 'FedEx child key'),
          h('dd', {}, h('code', {}, 'demo-child-key'), ' / secret ', h('code', {}, 'demo-child-secret')),
          h('dt', {}, 'IoT login'),
          h('dd', {}, h('code', {}, 'operator'), ' / ', h('code', {}, 'operator-pass')),
        ),
        h('p', { class: 'hint' }, 'Use "Add connection" and pick a demo client to try each flow.'),
      );
      const go = h('button', { type: 'button', class: 'btn btn-primary' }, 'Add connection');
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
      toast('The sandbox stopped. Its demo clients stay: start it again, or leave it.');
    } catch (e) {
      this.failed(e);
    }
  }

  async leave(): Promise<void> {
    const ok = await confirmDialog({
      title: 'Leave the sandbox?',
      message:
        'Every sandbox connection is logged out and removed, with the demo clients and their keyring entries, and the sandbox stops. Your own clients and connections are not touched.',
      okLabel: 'Leave the sandbox',
      danger: true,
    });
    if (!ok) return;
    try {
      const report = await api.leaveSandbox();
      this.opts.bar.setRunning(null);
      const n = report.connections.length;
      toast(
        `Left the sandbox: ${n} demo connection${n === 1 ? '' : 's'} and ${report.clients.length} demo client${report.clients.length === 1 ? '' : 's'} removed. Nothing else was touched.`,
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
