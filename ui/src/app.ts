// Wiring: builds the window, shows the first list, routes backend events to the views
// and row buttons to commands. main.ts only calls `mountApp(document.body)`.
//
// The first list comes with the page (the shell's first snapshot, see api.ts), so it is
// in the window's first frame; only then does the window follow the change feed from
// that snapshot's version (`changes`, a long poll). Without a first snapshot (tests, a
// dev server) it asks for one, renders it, then follows.

import { api, takeFirstSnapshot, toCommandError } from './api';
import type { AppInfo } from './bindings/AppInfo';
import type { CallbackResult } from './bindings/CallbackResult';
import type { ChangeEvent } from './bindings/ChangeEvent';
import type { ConnectionSummary } from './bindings/ConnectionSummary';
import type { LogoutOutcome } from './bindings/LogoutOutcome';
import type { Snapshot } from './bindings/Snapshot';
import { Ticker } from './countdown';
import { h, setText } from './dom';
import { errorLine } from './errors';
import { AddConnectionDialog } from './views/add-connection';
import { ClientsView } from './views/clients';
import { DetailsPanel } from './views/details';
import { confirmDialog, openDialog, toast } from './views/dialogs';
import { ConnectionList, type RowActions } from './views/list';
import type { Provider } from './bindings/Provider';

export interface MountOptions {
  ticker?: Ticker;
  /** The first snapshot; by default the one the shell put in the page. */
  firstSnapshot?: Snapshot | null;
}

export interface App {
  list: ConnectionList;
  details: DetailsPanel;
  clients: ClientsView;
  ticker: Ticker;
  /** Settles once the first list is on screen (or its failure is shown). */
  ready: Promise<void>;
  openAddConnection(opts?: { tab?: Provider; client?: string; username?: string }): AddConnectionDialog;
  /** Stops following changes (awaitable, so tests can tear the fake backend down afterwards). */
  dispose(): Promise<void>;
}

/** The banner text when browser redirects cannot reach this window; null when they can. */
export function deepLinkBanner(info: AppInfo): string | null {
  if (info.single_instance && info.deep_link_problem == null) return null;
  const cause = info.deep_link_problem ?? 'Authdeck is not running as a single instance';
  return `${cause.replace(/[.\s]+$/, '')}: FlowAccount's browser redirects can't reach Authdeck. When you connect a business, paste the redirect URL from your browser instead.`;
}

/** The banner text while refreshed tokens wait for a locked keyring; null when none do. */
export function keyringBanner(info: AppInfo): string | null {
  const n = info.unsaved_tokens.length;
  if (n === 0) return null;
  return `Unlock your keyring to keep the refreshed tokens of ${n} connection${n === 1 ? '' : 's'} (${info.unsaved_tokens.join(', ')}). They are saved as soon as it is unlocked.`;
}

const LOGOUT_DONE: Record<LogoutOutcome, string> = {
  revoked: 'Logged out: the IoT platform revoked the session.',
  already_revoked: 'Logged out: the IoT platform had already ended the session.',
  disconnected: 'Disconnected: the tokens were deleted from this computer.',
};

export function mountApp(root: HTMLElement, options: MountOptions = {}): App {
  const ticker = options.ticker ?? new Ticker();
  let addDialog: AddConnectionDialog | null = null;

  // ---- layout ------------------------------------------------------------------------
  const banners = h('div', { class: 'banners' });
  const addButton = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'add-connection' }, 'Add connection');
  const navConnections = h('button', { type: 'button', class: 'nav-btn', 'aria-current': 'page', 'data-testid': 'nav-connections' }, 'Connections');
  const navClients = h('button', { type: 'button', class: 'nav-btn', 'data-testid': 'nav-clients' }, 'Clients & settings');
  const version = h('span', { class: 'version muted' });
  const header = h('header', { class: 'topbar' },
    h('h1', { class: 'brand' }, 'Authdeck'),
    h('nav', { class: 'nav', 'aria-label': 'Views' }, navConnections, navClients),
    h('div', { class: 'spacer' }),
    version,
    addButton);

  const scroll = h('div', { class: 'list-scroll' });
  const details = new DetailsPanel(ticker);
  const actions: RowActions = {
    refresh: async (c) => list.upsert(await api.refresh(c.id)),
    logout: (c) => logout(c),
    copy: async (c) => {
      await api.copyAccessToken(c.id);
      toast(`Access token of ${c.label} copied to the clipboard.`);
    },
    reconnect: (c) => reconnect(c),
  };
  const list = new ConnectionList({
    ticker,
    actions,
    scrollRoot: scroll,
    onSelect: (c) => details.show(c),
    onSelectedChange: (c) => details.show(c),
    onCountChange: (n) => {
      if (empty.hidden !== n > 0) empty.hidden = n > 0;
      if (list.el.hidden !== (n === 0)) list.el.hidden = n === 0;
      if (toolbar.hidden !== (n === 0)) toolbar.hidden = n === 0;
    },
  });
  const emptyAdd = h('button', { type: 'button', class: 'btn btn-primary' }, 'Add a client');
  const emptySandbox = h('button', { type: 'button', class: 'btn', 'data-testid': 'sandbox-start' }, 'Try the sandbox');
  const empty = h('div', { class: 'empty', 'data-testid': 'empty-state' },
    h('h2', {}, 'No connections yet'),
    h('p', {}, 'Add a client — your app registration with FlowAccount, FedEx or the IoT platform — in Clients & settings, then use "Add connection" to connect a business, project or account. Or try the sandbox: it runs local emulators with demo accounts so you can try every flow first.'),
    h('div', { class: 'inline-actions' }, emptyAdd, emptySandbox));
  empty.hidden = true;
  const filter = h('input', {
    type: 'search', class: 'filter', placeholder: 'Filter by name, supportCode, username, client…',
    'aria-label': 'Filter connections', 'data-testid': 'list-filter', autocomplete: 'off', spellcheck: 'false',
  });
  filter.addEventListener('input', () => list.filter(filter.value));
  filter.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && filter.value) {
      e.preventDefault();
      filter.value = '';
      list.filter('');
    }
  });
  const toolbar = h('div', { class: 'list-toolbar' }, filter);
  scroll.append(toolbar, empty, list.el);

  const connectionsView = h('div', { class: 'connections-view' }, scroll, details.el);
  const clients = new ClientsView({ onSandbox: () => void startSandbox() });
  clients.el.hidden = true;
  const main = h('main', { class: 'main' }, connectionsView, clients.el);
  const shell = h('div', { class: 'app' }, header, banners, main);
  root.append(shell);

  // ---- navigation --------------------------------------------------------------------
  const showView = (which: 'connections' | 'clients') => {
    const c = which === 'clients';
    connectionsView.hidden = c;
    clients.el.hidden = !c;
    navConnections.toggleAttribute('aria-current', !c);
    navClients.toggleAttribute('aria-current', c);
    if (!c) navConnections.setAttribute('aria-current', 'page');
    else navClients.setAttribute('aria-current', 'page');
    if (c) void clients.reload();
  };
  navConnections.addEventListener('click', () => showView('connections'));
  navClients.addEventListener('click', () => showView('clients'));
  emptyAdd.addEventListener('click', () => showView('clients'));
  emptySandbox.addEventListener('click', () => void startSandbox());

  // ---- banners -----------------------------------------------------------------------
  function banner(text: string, kind: 'warning' | 'error'): HTMLElement {
    const dismiss = h('button', { type: 'button', class: 'btn btn-ghost', 'aria-label': 'Dismiss' }, '×');
    const el = h('div', { class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'error-banner' },
      h('span', {}, text), dismiss);
    dismiss.addEventListener('click', () => el.remove());
    banners.append(el);
    return el;
  }

  // ---- actions -----------------------------------------------------------------------
  function openAddConnection(opts: { tab?: Provider; client?: string; username?: string } = {}): AddConnectionDialog {
    addDialog?.dialog.close();
    const d = new AddConnectionDialog({
      ticker,
      ...opts,
      onConnected: (conn) => {
        list.upsert(conn);
        list.highlight(conn.id);
        toast(`Connected ${conn.label}.`);
      },
      onManageClients: () => showView('clients'),
    });
    addDialog = d;
    void d.loadClients();
    return d;
  }
  addButton.addEventListener('click', () => openAddConnection());

  async function logout(c: ConnectionSummary): Promise<void> {
    const iot = c.provider === 'iot';
    const ok = await confirmDialog({
      title: iot ? `Log out ${c.label}?` : `Disconnect ${c.label}?`,
      message: iot
        ? 'The IoT platform is asked to revoke the session; the tokens are deleted here once it confirms.'
        : 'Its tokens are deleted from this computer. The provider offers no revocation: connect again to use it.',
      okLabel: iot ? 'Log out' : 'Disconnect',
      danger: true,
    });
    if (!ok) return;
    const outcome = await api.logout(c.id);
    list.remove(c.id);
    toast(LOGOUT_DONE[outcome]);
  }

  async function reconnect(c: ConnectionSummary): Promise<void> {
    switch (c.provider) {
      case 'fedex':
        // No refresh token: a new token from the stored credentials is the reconnect.
        list.upsert(await api.refresh(c.id));
        return;
      case 'flowaccount': {
        const d = openAddConnection({ tab: 'flowaccount', client: c.client_id });
        await d.loadClients();
        await d.startFlowAccount(c.client_id);
        return;
      }
      case 'iot': {
        const d = openAddConnection({ tab: 'iot', client: c.client_id, username: c.username ?? '' });
        await d.loadClients();
        d.dialog.el.querySelector<HTMLInputElement>('[data-testid="iot-password"]')?.focus();
        return;
      }
    }
  }

  async function startSandbox(): Promise<void> {
    const buttons = Array.from(root.querySelectorAll<HTMLButtonElement>('[data-testid="sandbox-start"]'));
    buttons.forEach((b) => (b.disabled = true));
    try {
      const info = await api.startSandbox();
      const d = openDialog({ title: 'The sandbox is running', testid: 'sandbox-dialog' });
      d.body.append(
        h('p', {}, 'Local emulators answer at ', h('code', {}, info.base_url), '. Demo clients added: ', info.clients.join(', ') || 'none', '.'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'FlowAccount sign-in'), h('dd', {}, h('code', {}, 'demo@example.com'), ' / ', h('code', {}, 'demo')),
          h('dt', {}, 'FedEx child key'), h('dd', {}, h('code', {}, 'demo-child-key'), ' / secret ', h('code', {}, 'demo-child-secret')),
          h('dt', {}, 'IoT login'), h('dd', {}, h('code', {}, 'operator'), ' / ', h('code', {}, 'operator-pass'))),
        h('p', { class: 'hint' }, 'Use "Add connection" and pick a demo client to try each flow.'));
      const go = h('button', { type: 'button', class: 'btn btn-primary' }, 'Add connection');
      go.addEventListener('click', () => {
        d.close();
        openAddConnection();
      });
      d.body.append(h('div', { class: 'dialog-actions' }, go));
      void clients.reload();
    } catch (e) {
      banner(errorLine(toCommandError(e)), 'error');
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  // ---- app info --------------------------------------------------------------------
  let deepLinkBannerEl: HTMLElement | null = null;
  let keyringBannerEl: HTMLElement | null = null;
  function applyAppInfo(info: AppInfo): void {
    clients.setAppInfo(info);
    setText(version, `v${info.version}`);
    const text = deepLinkBanner(info);
    if (text && !deepLinkBannerEl?.isConnected) deepLinkBannerEl = banner(text, 'warning');
    else if (text && deepLinkBannerEl) setText(deepLinkBannerEl.firstElementChild!, text);
    const keyring = keyringBanner(info);
    if (keyring && !keyringBannerEl?.isConnected) keyringBannerEl = banner(keyring, 'warning');
    else if (keyring && keyringBannerEl) setText(keyringBannerEl.firstElementChild!, keyring);
    else if (!keyring) keyringBannerEl?.remove();
  }

  // ---- changes -----------------------------------------------------------------------
  function applyEvent(ev: ChangeEvent): void {
    switch (ev.kind) {
      case 'connection_changed':
        list.upsert(ev.connection);
        break;
      case 'connection_removed':
        list.remove(ev.id);
        break;
      case 'clients_changed':
        if (!clients.el.hidden) void clients.reload();
        if (addDialog?.dialog.open) void addDialog.loadClients();
        break;
      case 'history_added':
        if (ev.connection_id != null && ev.connection_id === details.connectionId) void details.reload();
        break;
      case 'app_info_changed':
        void api.appInfo().then(applyAppInfo, () => {});
        break;
      case 'redirect_finished':
        onRedirect(ev.result);
        break;
      case 'resync':
        break; // follow() loads the snapshot again
    }
  }
  function onRedirect(result: CallbackResult): void {
    if (addDialog?.dialog.open && addDialog.handleCallback(result)) return;
    if (result.ok && result.connection != null) {
      list.upsert(result.connection);
      list.highlight(result.connection.id);
      toast(`Connected ${result.connection.label}.`);
    } else {
      const e = result.error ?? { code: 'invalid_callback' as const, message: 'A browser redirect could not be used.' };
      banner(`A FlowAccount redirect was rejected. ${errorLine(e)}`, 'error');
    }
  }
  /** The change feed's version the window shows. */
  let shownVersion = 0;
  function applySnapshot(snap: Snapshot): void {
    applyAppInfo(snap.app_info);
    list.setAll(snap.connections);
    shownVersion = snap.version;
  }

  let stopped = false;
  /** Follow the change feed from the version shown, until disposed. */
  async function follow(): Promise<void> {
    let failures = 0;
    while (!stopped) {
      try {
        const batch = await api.changes(shownVersion);
        if (stopped) return;
        failures = 0;
        for (const ev of batch.events) applyEvent(ev);
        shownVersion = batch.version;
        if (batch.resync || batch.events.some((ev) => ev.kind === 'resync')) applySnapshot(await api.snapshot());
      } catch (e) {
        if (stopped) return;
        failures += 1;
        if (failures === 1) banner(`Live updates are not available: ${toCommandError(e).message}`, 'error');
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** failures)));
      }
    }
  }

  // ---- first load --------------------------------------------------------------------
  /**
   * The first list is in the DOM: mark it, and tell the shell after the next paint (the
   * list is on screen, not just in the DOM). Settles once the shell has been told.
   */
  function listRendered(): Promise<void> {
    if (typeof performance !== 'undefined' && typeof performance.mark === 'function') {
      performance.mark('authdeck:list-rendered');
    }
    document.documentElement.dataset.listReady = 'true';
    return new Promise<void>((resolve) => {
      const markReady = () =>
        setTimeout(() => {
          void api.markReady().catch(() => {});
          resolve();
        }, 0);
      if (typeof requestAnimationFrame === 'function') requestAnimationFrame(markReady);
      else markReady();
    });
  }

  const first = options.firstSnapshot === undefined ? takeFirstSnapshot() : options.firstSnapshot;
  const ready = (async () => {
    if (first) {
      applySnapshot(first);
      // Nothing competes with the frame that paints the first list.
      await listRendered();
    } else {
      try {
        applySnapshot(await api.snapshot());
      } catch (e) {
        list.setAll([]);
        banner(`The connections could not be loaded. ${errorLine(toCommandError(e))}`, 'error');
      }
      void listRendered();
    }
  })();
  // From the snapshot shown on: nothing that changes meanwhile is lost.
  void ready.then(follow);

  return {
    list,
    details,
    clients,
    ticker,
    ready,
    openAddConnection,
    async dispose() {
      addDialog?.dialog.close();
      list.dispose();
      details.dispose();
      shell.remove();
      stopped = true;
      await ready.catch(() => {});
    },
  };
}
