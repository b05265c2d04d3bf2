// Where each change-feed event goes: the list, the clients view, the open
// add-connection dialog, the details panel, the app info.

import type { CallbackResult } from '../bindings/CallbackResult';
import type { ChangeEvent } from '../bindings/ChangeEvent';
import type { CommandError } from '../bindings/CommandError';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import { t as tr } from '../i18n/index';
import type { ClientsView } from '../views/clients';
import type { DetailsPanel } from '../views/details';
import type { DevicesPanel } from '../views/devices';
import type { AddConnectionLauncher } from './add-launcher';
import type { ListEdits } from './row-actions';

export interface EventTargets {
  list: ListEdits;
  clients: ClientsView;
  details: DetailsPanel;
  /** The IoT devices (absent where a caller shows none). */
  devices?: DevicesPanel;
  addConnection: AddConnectionLauncher;
  /** The app info changed: fetch and show it. */
  reloadAppInfo: () => void;
  /** A browser redirect made a connection that no dialog was waiting for. */
  onConnected: (conn: ConnectionSummary) => void;
  /** A browser redirect could not be used. */
  onRedirectRejected: (e: CommandError) => void;
}

/** A function that applies one change-feed event to `t`. */
export function eventRouter(t: EventTargets): (ev: ChangeEvent) => void {
  const onRedirect = (result: CallbackResult): void => {
    if (t.addConnection.handleCallback(result)) return;
    if (result.ok && result.connection != null) {
      t.onConnected(result.connection);
    } else {
      t.onRedirectRejected(result.error ?? { code: 'invalid_callback', message: tr('event.redirectUnusable') });
    }
  };
  return (ev) => {
    switch (ev.kind) {
      case 'connection_changed':
        t.list.upsert(ev.connection);
        break;
      case 'connection_removed':
        t.list.remove(ev.id);
        break;
      case 'clients_changed':
        if (!t.clients.el.hidden) void t.clients.reload();
        t.addConnection.clientsChanged();
        void t.devices?.reload();
        break;
      case 'devices_changed':
        void t.devices?.reload();
        break;
      case 'history_added':
        if (ev.connection_id != null && ev.connection_id === t.details.connectionId) void t.details.reload();
        break;
      case 'app_info_changed':
        t.reloadAppInfo();
        break;
      case 'redirect_finished':
        onRedirect(ev.result);
        break;
      case 'resync':
        break; // the feed loads the snapshot again
    }
  };
}
