// The add-connection dialog's one instance: opening another closes the first, and the
// change feed reaches the open one (its client list, FlowAccount's redirect).

import type { CallbackResult } from '../bindings/CallbackResult';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Provider } from '../bindings/Provider';
import type { Ticker } from '../countdown';
import { AddConnectionDialog } from '../views/add-connection';

/** Where the dialog opens: the tab, the client and (IoT) the username to prefill. */
export interface AddConnectionStart {
  tab?: Provider;
  client?: string;
  username?: string;
}

export interface AddConnectionLauncherOptions {
  ticker: Ticker;
  onConnected: (conn: ConnectionSummary) => void;
  onManageClients: () => void;
}

export class AddConnectionLauncher {
  private dialog: AddConnectionDialog | null = null;

  constructor(private readonly opts: AddConnectionLauncherOptions) {}

  /** Open the dialog (closing one already open) and start loading its clients. */
  open(start: AddConnectionStart = {}): AddConnectionDialog {
    this.dialog?.dialog.close();
    const d = new AddConnectionDialog({
      ticker: this.opts.ticker,
      ...start,
      onConnected: (conn) => this.opts.onConnected(conn),
      onManageClients: () => this.opts.onManageClients(),
    });
    this.dialog = d;
    void d.loadClients();
    return d;
  }

  /** The clients changed: an open dialog reloads its list. */
  clientsChanged(): void {
    if (this.dialog?.dialog.open) void this.dialog.loadClients();
  }

  /** Hand a redirect's result to an open dialog; false when none took it. */
  handleCallback(result: CallbackResult): boolean {
    return this.dialog?.dialog.open === true && this.dialog.handleCallback(result);
  }

  close(): void {
    this.dialog?.dialog.close();
  }
}
