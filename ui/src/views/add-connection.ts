// The add-connection dialog: one tab per provider. FlowAccount hands over to the system
// browser and waits for the redirect (deep link, or a URL pasted by hand); FedEx and the
// IoT platform connect in one request. The IoT password is used once and cleared.

import { api, toCommandError } from '../api';
import type { CallbackResult } from '../bindings/CallbackResult';
import type { Client } from '../bindings/Client';
import type { CommandError } from '../bindings/CommandError';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { FedexGrant } from '../bindings/FedexGrant';
import type { PendingAuthorization } from '../bindings/PendingAuthorization';
import type { Provider } from '../bindings/Provider';
import { type Ticker, formatCountdown } from '../countdown';
import { h, setText, uid } from '../dom';
import { errorLine } from '../errors';
import { type PlainKey, t, tParts } from '../i18n/index';
import { parseInstant } from '../status';
import { copyText } from './copy';
import { type DialogHandle, openDialog } from './dialogs';
import { busy, errorSlot, field, input, secretInput, select, setOptions, showError } from './form';
import { ENV_LABEL } from './row';

export interface AddConnectionOptions {
  ticker: Ticker;
  tab?: Provider;
  /** Preselect a client (its id) in the tab's picker. */
  client?: string;
  /** IoT re-login: the username to prefill. */
  username?: string;
  onConnected: (conn: ConnectionSummary) => void;
  /** "Create a client" → the clients view. */
  onManageClients: () => void;
}

const TAB_TITLE: Record<Provider, PlainKey> = {
  flowaccount: 'add.tab.flowaccount',
  fedex: 'add.tab.fedex',
  iot: 'add.tab.iot',
};

const CREATE_CLIENT: Record<Provider, PlainKey> = {
  flowaccount: 'add.createClient.flowaccount',
  fedex: 'add.createClient.fedex',
  iot: 'add.createClient.iot',
};

const NO_CLIENT: Record<Provider, PlainKey> = {
  flowaccount: 'add.noClient.flowaccount',
  fedex: 'add.noClient.fedex',
  iot: 'add.noClient.iot',
};

export const GRANT_LABEL: Record<FedexGrant, PlainKey> = {
  client_credentials: 'fedex.grant.client_credentials',
  csp_credentials: 'fedex.grant.csp_credentials',
  client_pc_credentials: 'fedex.grant.client_pc_credentials',
};

function clientOptions(clients: Client[], provider: Provider): [string, string][] {
  return clients
    .filter((c) => c.provider === provider)
    .map((c) => [c.id, t('add.clientOption', { name: c.name, env: t(ENV_LABEL[c.environment]) })]);
}

export class AddConnectionDialog {
  readonly dialog: DialogHandle;
  private readonly tabs = {} as Record<Provider, HTMLButtonElement>;
  private readonly panels = {} as Record<Provider, HTMLElement>;
  private readonly pickers = {} as Record<Provider, HTMLSelectElement>;
  private readonly noClient = {} as Record<Provider, HTMLElement>;
  private pending: PendingAuthorization | null = null;
  private pendingAt: number | null = null;
  private unsubscribeTick: (() => void) | null = null;

  // FlowAccount
  private readonly faStart: HTMLButtonElement;
  private readonly faStartError: HTMLElement;
  private readonly faWaiting: HTMLElement;
  private readonly faExpires: HTMLElement;
  private readonly faPaste: HTMLInputElement;
  private readonly faPasteSubmit: HTMLButtonElement;
  private readonly faError: HTMLElement;
  private readonly faUrl: HTMLInputElement;
  private readonly faNoBrowser: HTMLElement;
  // FedEx
  private readonly fedexGrant: HTMLSelectElement;
  private readonly fedexChild: HTMLElement;
  private readonly fedexChildKey: HTMLInputElement;
  private readonly fedexChildSecret: HTMLInputElement;
  private readonly fedexError: HTMLElement;
  // IoT
  private readonly iotUsername: HTMLInputElement;
  private readonly iotPassword: HTMLInputElement;
  private readonly iotError: HTMLElement;

  constructor(private readonly opts: AddConnectionOptions) {
    this.dialog = openDialog({
      title: t('add.title'),
      testid: 'add-connection-dialog',
      className: 'dialog-wide',
      onClose: () => this.stopWaiting(),
    });
    const tablist = h('div', { role: 'tablist', class: 'tabs', 'aria-label': t('add.tabs') });
    for (const p of ['flowaccount', 'fedex', 'iot'] as const) {
      const tab = h(
        'button',
        {
          type: 'button',
          role: 'tab',
          class: 'tab',
          id: `tab-${p}`,
          'aria-controls': `panel-${p}`,
          'aria-selected': 'false',
          tabindex: -1,
          'data-testid': `tab-${p}`,
        },
        t(TAB_TITLE[p]),
      );
      tab.addEventListener('click', () => this.selectTab(p, false));
      this.tabs[p] = tab;
      tablist.append(tab);
      this.pickers[p] = select({ 'data-testid': p === 'flowaccount' ? 'fa-client' : `${p}-client` }, []);
      const create = h('button', { type: 'button', class: 'btn btn-link' }, t(CREATE_CLIENT[p]));
      create.addEventListener('click', () => {
        this.dialog.close();
        opts.onManageClients();
      });
      this.noClient[p] = h('p', { class: 'notice' }, t(NO_CLIENT[p]), ' ', create);
      this.noClient[p].hidden = true;
    }
    tablist.addEventListener('keydown', (e) => this.onTabKey(e));

    // ---- FlowAccount -----------------------------------------------------------------
    this.faStart = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'fa-start' }, t('fa.start'));
    this.faStartError = errorSlot('fa-error');
    const faForm = h(
      'form',
      { novalidate: true, class: 'form' },
      this.noClient.flowaccount,
      field(t('fa.client'), this.pickers.flowaccount, t('fa.client.hint')),
      h('p', { class: 'hint' }, t('fa.browserHint')),
      this.faStartError,
      h('div', { class: 'dialog-actions' }, this.faStart),
    );
    faForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.startFlowAccount();
    });

    this.faExpires = h('span', { class: 'countdown' });
    this.faPaste = input({
      'data-testid': 'fa-paste-url',
      placeholder: t('fa.paste.placeholder'),
      inputmode: 'url',
    });
    this.faPasteSubmit = h(
      'button',
      { type: 'submit', class: 'btn', 'data-testid': 'fa-paste-submit' },
      t('fa.paste.submit'),
    );
    this.faError = errorSlot('fa-waiting-error');
    const reopen = h('button', { type: 'button', class: 'btn', 'data-testid': 'fa-reopen' }, t('fa.reopen'));
    reopen.addEventListener('click', () => {
      if (!this.pending) return;
      void busy(reopen, () => api.openAuthorizeUrl(this.pending!.id)).then(
        () => this.showNoBrowser(false),
        (e) => {
          // No browser to hand the page to: say so, and show the address to open by hand.
          this.showNoBrowser(true);
          showError(this.faError, errorLine(toCommandError(e)));
        },
      );
    });
    const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'fa-cancel' }, t('dialog.cancel'));

    // The sign-in address, to open by hand when no browser opened (copyable, not a secret:
    // its `state` only binds the redirect to this window).
    this.faUrl = h('input', {
      type: 'text',
      readonly: true,
      class: 'mono',
      'data-testid': 'fa-authorize-url',
    });
    const copyUrl = h('button', { type: 'button', class: 'btn', 'data-testid': 'fa-copy-url' }, t('common.copy'));
    copyUrl.addEventListener('click', () => void copyText(this.faUrl.value, this.faUrl, t('fa.urlCopied')));
    this.faNoBrowser = h('p', { class: 'notice', 'data-testid': 'fa-no-browser', role: 'alert' }, t('fa.noBrowser'));
    this.faNoBrowser.hidden = true;
    this.faUrl.id = uid('fa-url');
    const urlBox = h(
      'div',
      { class: 'field' },
      h('label', { for: this.faUrl.id }, t('fa.signInUrl')),
      h('div', { class: 'inline-actions' }, this.faUrl, copyUrl),
    );
    cancel.addEventListener('click', () => this.cancelWaiting());
    const pasteForm = h(
      'form',
      { novalidate: true, class: 'form paste' },
      field(t('fa.paste.label'), this.faPaste, t('fa.paste.hint')),
      h('div', { class: 'inline-actions' }, this.faPasteSubmit),
    );
    pasteForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.completePasted();
    });
    this.faWaiting = h(
      'div',
      { class: 'waiting', 'data-testid': 'fa-waiting', role: 'status', 'aria-live': 'polite' },
      h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', t('fa.waiting')),
      h('p', {}, ...tParts('fa.expiresIn', { time: this.faExpires })),
      this.faError,
      h('div', { class: 'inline-actions' }, reopen, cancel),
      this.faNoBrowser,
      urlBox,
      pasteForm,
    );
    this.faWaiting.hidden = true;
    this.panels.flowaccount = h('div', {}, faForm, this.faWaiting);

    // ---- FedEx -------------------------------------------------------------------------
    this.fedexGrant = select(
      { 'data-testid': 'fedex-grant' },
      (Object.keys(GRANT_LABEL) as FedexGrant[]).map((g) => [g, t(GRANT_LABEL[g])] as const),
    );
    this.fedexChildKey = input({ 'data-testid': 'fedex-child-key' });
    this.fedexChildSecret = secretInput('fedex-child-secret');
    this.fedexChild = h(
      'div',
      { class: 'field-group' },
      field(t('fedex.childKey'), this.fedexChildKey),
      field(t('fedex.childSecret'), this.fedexChildSecret, t('fedex.childSecret.hint')),
    );
    this.fedexGrant.addEventListener('change', () => this.syncGrant());
    this.fedexError = errorSlot('fedex-error');
    const fedexSubmit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'fedex-submit' },
      t('fedex.connect'),
    );
    const fedexForm = h(
      'form',
      { novalidate: true, class: 'form' },
      this.noClient.fedex,
      field(t('fedex.project'), this.pickers.fedex),
      field(t('fedex.grant'), this.fedexGrant),
      this.fedexChild,
      this.fedexError,
      h('div', { class: 'dialog-actions' }, fedexSubmit),
    );
    fedexForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(fedexSubmit, () => this.connectFedex());
    });
    // The tab panel holds the form (a <form> may not take the tabpanel role: axe aria-allowed-role).
    this.panels.fedex = h('div', {}, fedexForm);

    // ---- IoT ---------------------------------------------------------------------------
    this.iotUsername = input({ 'data-testid': 'iot-username', autocomplete: 'username' });
    this.iotPassword = secretInput('iot-password');
    this.iotPassword.setAttribute('autocomplete', 'current-password');
    this.iotError = errorSlot('iot-error');
    const iotSubmit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'iot-submit' },
      t('iot.login'),
    );
    const iotForm = h(
      'form',
      { novalidate: true, class: 'form' },
      this.noClient.iot,
      field(t('iot.client'), this.pickers.iot),
      field(t('iot.username'), this.iotUsername),
      field(t('iot.password'), this.iotPassword, t('iot.password.hint')),
      this.iotError,
      h('div', { class: 'dialog-actions' }, iotSubmit),
    );
    iotForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(iotSubmit, () => this.connectIot());
    });
    this.panels.iot = h('div', {}, iotForm);

    for (const p of ['flowaccount', 'fedex', 'iot'] as const) {
      const panel = this.panels[p];
      panel.id = `panel-${p}`;
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', `tab-${p}`);
      panel.classList.add('tabpanel');
    }
    this.dialog.body.append(tablist, this.panels.flowaccount, this.panels.fedex, this.panels.iot);
    if (opts.username) this.iotUsername.value = opts.username;
    this.syncGrant();
    this.selectTab(opts.tab ?? 'flowaccount', false);
  }

  /** Resolves once the client pickers are filled. */
  async loadClients(): Promise<void> {
    try {
      this.setClients(await api.listClients());
    } catch (e) {
      showError(this.faStartError, errorLine(toCommandError(e)));
    }
  }

  setClients(clients: Client[]): void {
    for (const p of ['flowaccount', 'fedex', 'iot'] as const) {
      const opts = clientOptions(clients, p);
      setOptions(this.pickers[p], opts);
      if (this.opts.client && opts.some(([id]) => id === this.opts.client)) this.pickers[p].value = this.opts.client;
      this.noClient[p].hidden = opts.length > 0;
    }
  }

  get waiting(): boolean {
    return this.pending !== null;
  }

  selectTab(p: Provider, focus: boolean): void {
    for (const q of ['flowaccount', 'fedex', 'iot'] as const) {
      const on = q === p;
      this.tabs[q].setAttribute('aria-selected', String(on));
      this.tabs[q].tabIndex = on ? 0 : -1;
      this.panels[q].hidden = !on;
    }
    if (focus) this.tabs[p].focus();
  }

  private onTabKey(e: KeyboardEvent): void {
    const order = ['flowaccount', 'fedex', 'iot'] as const;
    const i = order.findIndex((p) => this.tabs[p] === e.target);
    if (i < 0) return;
    let next: number | null = null;
    if (e.key === 'ArrowRight') next = (i + 1) % 3;
    else if (e.key === 'ArrowLeft') next = (i + 2) % 3;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = 2;
    if (next === null) return;
    e.preventDefault();
    this.selectTab(order[next]!, true);
  }

  private syncGrant(): void {
    const needsChild = this.fedexGrant.value !== 'client_credentials';
    this.fedexChild.hidden = !needsChild;
  }

  // ---- FlowAccount ---------------------------------------------------------------------

  /** Start an authorization (also the row's "Reconnect" for FlowAccount). */
  async startFlowAccount(clientId?: string): Promise<void> {
    const client = clientId ?? this.pickers.flowaccount.value;
    showError(this.faStartError, null);
    if (!client) {
      showError(this.faStartError, t('fa.pickClient'));
      return;
    }
    try {
      const started = await busy(this.faStart, () => api.connectFlowaccount(client));
      this.beginWaiting(started);
      // The shell could not hand the page to a browser: say so at once.
      this.showNoBrowser(!started.browser_opened);
    } catch (e) {
      showError(this.faStartError, errorLine(toCommandError(e)));
    }
  }

  private beginWaiting(pending: PendingAuthorization): void {
    this.stopWaiting();
    this.pending = pending;
    this.pendingAt = parseInstant(pending.expires_at);
    showError(this.faError, null);
    this.faPaste.value = '';
    this.faUrl.value = pending.authorize_url;
    this.showNoBrowser(false);
    this.faWaiting.hidden = false;
    this.faStart.hidden = true;
    this.updateWaiting(Date.now());
    this.unsubscribeTick = this.opts.ticker.subscribe((now) => this.updateWaiting(now));
    this.faPaste.focus();
  }

  /** Whether to say that the browser could not be opened (the address is shown either way). */
  private showNoBrowser(on: boolean): void {
    this.faNoBrowser.hidden = !on;
  }

  private updateWaiting(now: number): void {
    if (this.pendingAt !== null && this.pendingAt <= now) {
      setText(this.faExpires, t('fa.expired'));
    } else {
      setText(this.faExpires, formatCountdown(this.pendingAt, now));
    }
  }

  private stopWaiting(): void {
    this.unsubscribeTick?.();
    this.unsubscribeTick = null;
    this.pending = null;
    this.pendingAt = null;
  }

  /** Back to the start state. The core cancels the authorization: a loopback listener
   * stops, and its redirect, should it still come, is rejected. */
  cancelWaiting(): void {
    const pending = this.pending;
    if (pending) void api.cancelFlowaccount(pending.id).catch(() => {});
    this.stopWaiting();
    this.faWaiting.hidden = true;
    this.faStart.hidden = false;
    this.faStart.focus();
  }

  private async completePasted(): Promise<void> {
    const url = this.faPaste.value.trim();
    if (!url) {
      showError(this.faError, t('fa.pasteMissing'));
      return;
    }
    showError(this.faError, null);
    try {
      const conn = await busy(this.faPasteSubmit, () => api.completeCallback(url));
      this.finish(conn);
    } catch (e) {
      showError(this.faError, errorLine(toCommandError(e)));
    }
  }

  /**
   * A deep-link redirect arrived. Returns whether this dialog was waiting for it; on
   * failure (forged, replayed or expired redirect) the error is shown and it keeps waiting.
   */
  handleCallback(result: CallbackResult): boolean {
    if (!this.waiting) return false;
    if (result.ok && result.connection != null) {
      this.finish(result.connection);
    } else {
      const err: CommandError = result.error ?? {
        code: 'invalid_callback',
        message: t('fa.redirectUnusable'),
        detail: null,
      };
      showError(this.faError, errorLine(err));
    }
    return true;
  }

  private finish(conn: ConnectionSummary): void {
    this.stopWaiting();
    this.dialog.close();
    this.opts.onConnected(conn);
  }

  // ---- FedEx -----------------------------------------------------------------------------

  private async connectFedex(): Promise<void> {
    const client = this.pickers.fedex.value;
    const grant = this.fedexGrant.value as FedexGrant;
    const needsChild = grant !== 'client_credentials';
    const childKey = this.fedexChildKey.value.trim();
    const childSecret = this.fedexChildSecret.value;
    showError(this.fedexError, null);
    if (!client) return showError(this.fedexError, t('fedex.pickProject'));
    if (needsChild && (!childKey || !childSecret)) {
      return showError(this.fedexError, t('fedex.needChild'));
    }
    this.fedexChildSecret.value = ''; // write-only: never kept in the form
    try {
      const conn = await api.connectFedex({
        client,
        grant,
        child_key: needsChild ? childKey : null,
        child_secret: needsChild ? childSecret : null,
      });
      this.finish(conn);
    } catch (e) {
      showError(this.fedexError, errorLine(toCommandError(e), { provider: 'fedex', child: needsChild }));
    }
  }

  // ---- IoT -------------------------------------------------------------------------------

  private async connectIot(): Promise<void> {
    const client = this.pickers.iot.value;
    const username = this.iotUsername.value.trim();
    const password = this.iotPassword.value;
    showError(this.iotError, null);
    if (!client) return showError(this.iotError, t('iot.pickClient'));
    if (!username || !password) return showError(this.iotError, t('iot.needCredentials'));
    this.iotPassword.value = ''; // used once, never stored (RFC 6749 §4.3.2)
    try {
      const conn = await api.connectIot({ client, username, password });
      this.finish(conn);
    } catch (e) {
      showError(this.iotError, errorLine(toCommandError(e), { provider: 'iot' }));
      this.iotPassword.focus();
    }
  }
}
