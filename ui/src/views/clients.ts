// Clients & settings: the app registrations per provider and environment, a form to
// add one (secrets write-only), the redirect URI to register with FlowAccount, and
// the sandbox.

import { api, toCommandError } from '../api';
import type { AppInfo } from '../bindings/AppInfo';
import type { Client } from '../bindings/Client';
import type { Environment } from '../bindings/Environment';
import type { IotBasicAuth } from '../bindings/IotBasicAuth';
import type { IotBodyEncoding } from '../bindings/IotBodyEncoding';
import type { NewClientInput } from '../bindings/NewClientInput';
import type { Provider } from '../bindings/Provider';
import { formatInstant, h, replaceChildren } from '../dom';
import { errorLine } from '../errors';
import { confirmDialog, toast } from './dialogs';
import { busy, errorSlot, field, input, secretInput, select, showError } from './form';
import { PROVIDER_ORDER } from './list';

const PROVIDER_NAME: Record<Provider, string> = {
  flowaccount: 'FlowAccount',
  fedex: 'FedEx API',
  iot: 'IoT platform',
};

export interface ClientsViewOptions {
  onSandbox: () => void;
  /** "Leave the sandbox" (the app confirms first). */
  onLeaveSandbox: () => void;
}

/** Copy non-secret text (the redirect URI); if the clipboard is refused, select it. */
async function copyText(text: string, fallback: HTMLInputElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast('Redirect URI copied.');
  } catch {
    fallback.focus();
    fallback.select();
    toast('Press Ctrl+C to copy the selected redirect URI.');
  }
}

export class ClientsView {
  readonly el: HTMLElement;
  private readonly listEl: HTMLElement;
  private readonly redirectEl: HTMLInputElement;
  private readonly leaveSandbox = h(
    'button',
    { type: 'button', class: 'btn btn-danger-ghost', 'data-testid': 'clients-sandbox-leave' },
    'Leave the sandbox',
  );
  private appInfo: AppInfo | null = null;

  // the add form
  private readonly name = input({ 'data-testid': 'client-name', required: true });
  private readonly provider = select(
    { 'data-testid': 'client-provider' },
    PROVIDER_ORDER.map((p) => [p, PROVIDER_NAME[p]] as const),
  );
  private readonly environment = select({ 'data-testid': 'client-environment' }, [
    ['sandbox', 'Sandbox'],
    ['production', 'Production'],
    ['custom', 'Custom endpoints'],
  ]);
  private readonly clientId = input({ 'data-testid': 'client-id' });
  private readonly secret = secretInput('client-secret');
  private readonly authorizeUrl = input({ 'data-testid': 'client-authorize-url', inputmode: 'url' });
  private readonly tokenUrl = input({ 'data-testid': 'client-token-url', inputmode: 'url' });
  private readonly authUrl = input({
    'data-testid': 'client-auth-url',
    inputmode: 'url',
    placeholder: 'https://authx.netpie.io',
  });
  private readonly redirectUri = input({ 'data-testid': 'client-redirect-uri', inputmode: 'url' });
  // PKCE is on by default (it stops a stolen redirect from connecting someone else's
  // business); unticking it is the explicit opt-out.
  private readonly pkce = h('input', { type: 'checkbox', checked: true, 'data-testid': 'client-pkce' });
  private readonly basicAuth = select({ 'data-testid': 'client-iot-basic-auth' }, [
    ['raw', 'Raw client id (as the platform documents)'],
    ['base64', 'base64 of "id:" (RFC 6749)'],
  ]);
  private readonly body = select({ 'data-testid': 'client-iot-body' }, [
    ['form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data'],
  ]);
  private readonly formError = errorSlot('client-error');
  private readonly sections: Record<'fa' | 'fedex' | 'iot' | 'custom' | 'customFa', HTMLElement>;

  constructor(private readonly opts: ClientsViewOptions) {
    this.listEl = h('div', { class: 'client-list', 'aria-live': 'polite' });
    this.redirectEl = h('input', {
      type: 'text',
      readonly: true,
      class: 'mono',
      'aria-label': 'Redirect URI',
      'data-testid': 'redirect-uri',
    });
    const copy = h('button', { type: 'button', class: 'btn', 'data-testid': 'redirect-copy' }, 'Copy');
    copy.addEventListener('click', () => void copyText(this.redirectEl.value, this.redirectEl));

    this.sections = {
      fa: h(
        'div',
        { class: 'field-group' },
        field(
          'Redirect URI',
          this.redirectUri,
          'Leave empty to use the one above. It must equal the one registered with FlowAccount exactly.',
        ),
        h(
          'label',
          { class: 'check' },
          this.pkce,
          ' Send a PKCE challenge (S256) — recommended; untick only if FlowAccount refuses it for this client',
        ),
      ),
      customFa: h('div', { class: 'field-group' }, field('Authorize URL', this.authorizeUrl)),
      custom: h('div', { class: 'field-group' }, field('Token URL', this.tokenUrl)),
      iot: h(
        'div',
        { class: 'field-group' },
        field(
          'Auth URL',
          this.authUrl,
          "The deployment's auth server: tokens at {auth_url}/oauth/token, logout at {auth_url}/user/logout.",
        ),
        field('Authorization: Basic', this.basicAuth),
        field('Login request body', this.body),
      ),
      fedex: h('div', { class: 'field-group' }),
    };
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'client-submit' },
      'Add client',
    );
    const form = h(
      'form',
      { novalidate: true, class: 'form', 'aria-labelledby': 'add-client-title' },
      h('h3', { id: 'add-client-title' }, 'Add a client (app registration)'),
      field('Name', this.name, 'Your name for it, e.g. "Office FlowAccount".'),
      field('Provider', this.provider),
      field('Environment', this.environment),
      field('Client ID', this.clientId, "FedEx: the project's API key. IoT platform: the application client ID."),
      field(
        'Client secret',
        this.secret,
        'Write-only: stored in your system keyring, never shown again. IoT platform: leave empty.',
      ),
      this.sections.customFa,
      this.sections.custom,
      this.sections.fa,
      this.sections.iot,
      this.formError,
      h('div', { class: 'dialog-actions' }, submit),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(submit, () => this.submit());
    });
    this.provider.addEventListener('change', () => this.syncForm());
    this.environment.addEventListener('change', () => this.syncForm());

    const sandbox = h('button', { type: 'button', class: 'btn', 'data-testid': 'sandbox-start' }, 'Try the sandbox');
    sandbox.addEventListener('click', () => this.opts.onSandbox());
    this.leaveSandbox.addEventListener('click', () => this.opts.onLeaveSandbox());
    this.leaveSandbox.hidden = true;

    this.el = h(
      'section',
      { class: 'clients-view', 'aria-labelledby': 'clients-title', 'data-testid': 'clients-view' },
      h('h2', { id: 'clients-title' }, 'Clients & settings'),
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Redirect URI for FlowAccount'),
        h('p', { class: 'hint' }, 'Register this exact address as a redirect URI of your FlowAccount app.'),
        h('div', { class: 'inline-actions' }, this.redirectEl, copy),
      ),
      this.listEl,
      h('div', { class: 'card' }, form),
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Sandbox'),
        h(
          'p',
          { class: 'hint' },
          'Starts local FlowAccount, FedEx and IoT emulators (on a free loopback port) and adds demo clients, marked "Sandbox", so you can try every flow without real accounts. "Leave the sandbox" removes them with their connections.',
        ),
        h('div', { class: 'inline-actions' }, sandbox, this.leaveSandbox),
      ),
    );
    this.syncForm();
  }

  setAppInfo(info: AppInfo): void {
    this.appInfo = info;
    this.redirectEl.value = info.redirect_uri;
    this.redirectUri.placeholder = info.redirect_uri;
  }

  async reload(): Promise<void> {
    try {
      this.render(await api.listClients());
    } catch (e) {
      replaceChildren(this.listEl, h('p', { class: 'form-error', role: 'alert' }, errorLine(toCommandError(e))));
    }
  }

  render(clients: Client[]): void {
    const nodes: Node[] = [];
    for (const p of PROVIDER_ORDER) {
      const mine = clients.filter((c) => c.provider === p);
      const items = mine.map((c) => this.clientItem(c));
      nodes.push(
        h(
          'div',
          { class: 'card' },
          h('h3', {}, PROVIDER_NAME[p], ' ', h('span', { class: 'group-count' }, String(mine.length))),
          items.length ? h('ul', { class: 'clients' }, ...items) : h('p', { class: 'muted' }, 'None yet.'),
        ),
      );
    }
    replaceChildren(this.listEl, ...nodes);
    this.leaveSandbox.hidden = !clients.some((c) => c.sandbox);
  }

  private clientItem(c: Client): HTMLElement {
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-danger-ghost',
        'data-testid': 'client-remove',
        'aria-label': `Remove ${c.name}`,
      },
      'Remove',
    );
    const err = errorSlot();
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: `Remove ${c.name}?`,
        message:
          'Its client secret is deleted from the keyring. Connections made with it must be logged out or disconnected first.',
        okLabel: 'Remove client',
        danger: true,
      });
      if (!ok) return;
      try {
        await busy(remove, () => api.removeClient(c.name));
        await this.reload();
      } catch (e) {
        showError(err, errorLine(toCommandError(e)));
      }
    });
    return h(
      'li',
      { class: 'client', 'data-testid': 'client-item', 'data-client-id': c.id },
      h(
        'div',
        {},
        h('strong', {}, c.name),
        ' ',
        h('span', { class: 'badge env', 'data-env': c.environment }, c.environment),
        ' ',
        ...(c.sandbox
          ? [h('span', { class: 'badge badge-sandbox', 'data-testid': 'sandbox-badge' }, 'Sandbox'), ' ']
          : []),
        h('span', { class: 'mono muted' }, c.client_id),
        ' ',
        h('span', { class: 'muted' }, c.has_secret ? '· secret in keyring' : '· no secret'),
        h('div', { class: 'muted small' }, c.endpoints.token_url, ' · added ', formatInstant(c.created_at)),
      ),
      remove,
      err,
    );
  }

  private syncForm(): void {
    const p = this.provider.value as Provider;
    const custom = this.environment.value === 'custom';
    this.sections.fa.hidden = p !== 'flowaccount';
    this.sections.customFa.hidden = !(p === 'flowaccount' && custom);
    this.sections.custom.hidden = !(custom && p !== 'iot');
    this.sections.iot.hidden = p !== 'iot';
  }

  private async submit(): Promise<void> {
    const p = this.provider.value as Provider;
    const env = this.environment.value as Environment;
    const custom = env === 'custom';
    const name = this.name.value.trim();
    const clientId = this.clientId.value.trim();
    const secret = this.secret.value;
    this.secret.value = ''; // write-only: cleared whatever happens next
    showError(this.formError, null);
    if (!name || !clientId) return showError(this.formError, 'Enter a name and the client ID.');
    const opt = (el: HTMLInputElement, when: boolean) => (when && el.value.trim() ? el.value.trim() : null);
    const input: NewClientInput = {
      name,
      provider: p,
      environment: env,
      client_id: clientId,
      client_secret: secret ? secret : null,
      authorize_url: opt(this.authorizeUrl, p === 'flowaccount' && custom),
      token_url: opt(this.tokenUrl, custom && p !== 'iot'),
      auth_url: opt(this.authUrl, p === 'iot'),
      redirect_uri: opt(this.redirectUri, p === 'flowaccount'),
      pkce: p === 'flowaccount' && this.pkce.checked,
      iot_basic_auth: this.basicAuth.value as IotBasicAuth,
      iot_body: this.body.value as IotBodyEncoding,
    };
    try {
      const client = await api.addClient(input);
      toast(`Client ${client.name} added.`);
      this.name.value = '';
      this.clientId.value = '';
      await this.reload();
    } catch (e) {
      showError(this.formError, errorLine(toCommandError(e)));
    }
  }

  get info(): AppInfo | null {
    return this.appInfo;
  }
}
