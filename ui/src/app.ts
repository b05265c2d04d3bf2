// Wiring: builds the window from its parts (src/window/) and the views (src/views/),
// shows the first list, then follows the change feed. main.ts only calls
// `mountApp(document.body)`.
//
// The first list comes with the page (the shell's first snapshot, see api.ts), so it is
// in the window's first frame; only then does the window follow the change feed from
// that snapshot's version (`changes`, a long poll). Without a first snapshot (tests, a
// dev server) it asks for one, renders it, then follows.

import { api, takeFirstSnapshot } from './api';
import type { ConnectionSummary } from './bindings/ConnectionSummary';
import type { Snapshot } from './bindings/Snapshot';
import { Ticker } from './countdown';
import { h } from './dom';
import { errorLine } from './errors';
import { onLanguageChange, t } from './i18n/index';
import { ActivityView } from './views/activity';
import type { AddConnectionDialog } from './views/add-connection';
import { ClientsView } from './views/clients';
import type { DetailsPanel } from './views/details';
import { toast } from './views/dialogs';
import { titleOf } from './views/identity';
import type { ConnectionList } from './views/list';
import { SandboxBar } from './views/sandbox';
import { TeamCard, TeamWatch } from './views/team';
import { AddConnectionLauncher, type AddConnectionStart } from './window/add-launcher';
import { appInfoView } from './window/app-info';
import { Banners } from './window/banners';
import { ConnectionsView } from './window/connections';
import { eventRouter } from './window/events';
import { ChangeFeed } from './window/feed';
import { showFirstList } from './window/first-load';
import { Header, type ViewName } from './window/header';
import { rowActions } from './window/row-actions';
import { SandboxFlow } from './window/sandbox-flow';

export { deepLinkBanner } from './window/app-info';

export interface MountOptions {
  ticker?: Ticker;
  /** The first snapshot; by default the one the shell put in the page. */
  firstSnapshot?: Snapshot | null;
  /** The view shown first (a re-render after a language change keeps the view). */
  view?: ViewName;
}

export interface App {
  list: ConnectionList;
  details: DetailsPanel;
  clients: ClientsView;
  sandboxBar: SandboxBar;
  ticker: Ticker;
  /** Settles once the first list is on screen (or its failure is shown). */
  ready: Promise<void>;
  openAddConnection(opts?: AddConnectionStart): AddConnectionDialog;
  /** The view shown. */
  readonly view: ViewName;
  /** Stops following changes (awaitable, so tests can tear the fake backend down afterwards). */
  dispose(): Promise<void>;
}

export function mountApp(root: HTMLElement, options: MountOptions = {}): App {
  const ticker = options.ticker ?? new Ticker();
  const connected = (conn: ConnectionSummary) => {
    connections.showConnected(conn);
    toast(t('toast.connected', { label: titleOf(conn) }));
  };
  const addConnection = new AddConnectionLauncher({
    ticker,
    onConnected: connected,
    onManageClients: () => showView('clients'),
  });

  const header = new Header({ onNavigate: (view) => showView(view), onAddConnection: () => addConnection.open() });
  const sandboxBar: SandboxBar = new SandboxBar({
    onStart: () => sandbox.start(),
    onStop: () => sandbox.stop(),
    onLeave: () => sandbox.leave(),
  });
  const banners = new Banners();
  const connections = new ConnectionsView({
    ticker,
    actions: (list) => rowActions(list, addConnection),
    onSandboxData: (has) => sandboxBar.setHasData(has),
    onAddClient: () => showView('clients'),
    onStartSandbox: () => void sandbox.start(),
  });
  const { list, details } = connections;
  const teamCard: TeamCard = new TeamCard({ onChange: (state) => team.set(state) });
  const team = new TeamWatch(
    (state) => {
      header.team.show(state);
      teamCard.render(state);
    },
    (e) => teamCard.showProblem(e),
  );
  const clients = new ClientsView({
    onSandbox: () => void sandbox.start(),
    onLeaveSandbox: () => void sandbox.leave(),
    team: teamCard.el,
  });
  clients.el.hidden = true;
  const activity = new ActivityView();
  activity.el.hidden = true;
  const shell = h(
    'div',
    { class: 'app' },
    header.el,
    sandboxBar.el,
    banners.el,
    h('main', { class: 'main' }, connections.el, activity.el, clients.el),
  );
  root.append(shell);

  const sandbox: SandboxFlow = new SandboxFlow({
    root,
    bar: sandboxBar,
    clients,
    banners,
    openAddConnection: () => addConnection.open(),
  });
  let currentView: ViewName = 'connections';
  function showView(view: ViewName): void {
    currentView = view;
    connections.el.hidden = view !== 'connections';
    clients.el.hidden = view !== 'clients';
    activity.el.hidden = view !== 'activity';
    header.setCurrent(view);
    if (view === 'clients') {
      void clients.reload();
      void team.poll();
    }
    if (view === 'activity') void activity.reload();
  }

  if (options.view !== undefined && options.view !== 'connections') showView(options.view);

  const showAppInfo = appInfoView({ header, sandboxBar, clients, banners });
  const route = eventRouter({
    list,
    clients,
    details,
    devices: connections.devices,
    addConnection,
    reloadAppInfo: () => {
      void api.appInfo().then(showAppInfo, () => {});
      // The team's store answers (again) or not: the header's mark now, not at its next poll.
      void team.poll();
    },
    onConnected: connected,
    onRedirectRejected: (e) => banners.show(t('banner.redirectRejected', { error: errorLine(e) }), 'error'),
  });
  const feed = new ChangeFeed({
    onSnapshot: (snap) => {
      showAppInfo(snap.app_info);
      list.setAll(snap.connections);
    },
    onEvent: (ev) => {
      route(ev);
      // New history (or a removal): the activity view, if it shows, reads it again.
      if (ev.kind === 'history_added' || ev.kind === 'connection_removed') activity.changed();
    },
    onUnavailable: (e) => banners.show(t('banner.feedUnavailable', { message: e.message }), 'error'),
  });

  const first = options.firstSnapshot === undefined ? takeFirstSnapshot() : options.firstSnapshot;
  const ready = showFirstList(first, feed, (e) => {
    list.setAll([]);
    banners.show(t('banner.loadFailed', { error: errorLine(e) }), 'error');
  });
  // From the snapshot shown on: nothing that changes meanwhile is lost.
  void ready.then(() => {
    feed.follow();
    void connections.devices.reload();
    team.start();
  });

  return {
    list,
    details,
    clients,
    sandboxBar,
    ticker,
    ready,
    openAddConnection: (opts) => addConnection.open(opts),
    get view() {
      return currentView;
    },
    async dispose() {
      addConnection.close();
      team.stop();
      connections.dispose();
      shell.remove();
      feed.stop();
      await ready.catch(() => {});
    },
  };
}

/** The window, mounted again in the new language when the language or calendar changes. */
export interface LiveWindow {
  readonly app: App;
  dispose(): Promise<void>;
}

/**
 * Mount the app and re-render it whenever the language (or the Thai calendar) changes:
 * no restart; the view shown is kept, and the list comes again from a fresh snapshot.
 */
export function mountWindow(root: HTMLElement, options: MountOptions = {}): LiveWindow {
  let app = mountApp(root, options);
  let old: Promise<void> = Promise.resolve();
  const off = onLanguageChange(() => {
    const view = app.view;
    const settingsFocused = document.activeElement?.closest('[data-testid="settings-card"]') != null;
    const focusedId = settingsFocused ? (document.activeElement as HTMLElement).dataset.testid : undefined;
    old = app.dispose();
    app = mountApp(root, { ...options, firstSnapshot: null, view });
    if (focusedId) root.querySelector<HTMLElement>(`[data-testid="${focusedId}"]`)?.focus();
  });
  return {
    get app() {
      return app;
    },
    async dispose() {
      off();
      await old;
      await app.dispose();
    },
  };
}
