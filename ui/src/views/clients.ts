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
import { type PlainKey, t } from '../i18n/index';
import { copyText } from './copy';
import { confirmDialog, toast } from './dialogs';
import { busy, errorSlot, field, input, secretInput, select, showError } from './form';
import { PROVIDER_ORDER } from './list';
import { ENV_EXPLAIN, ENV_LABEL } from './row';
import { settingsCard } from './settings';

const PROVIDER_NAME: Record<Provider, PlainKey> = {
  flowaccount: 'clients.provider.flowaccount',
  fedex: 'clients.provider.fedex',
  iot: 'clients.provider.iot',
};

export interface ClientsViewOptions {
  onSandbox: () => void;
  /** "Leave the sandbox" (the app confirms first). */
  onLeaveSandbox: () => void;
  /** The Team section (views/team.ts), under Language and dates. */
  team?: HTMLElement;
}

export class ClientsView {
  readonly el: HTMLElement;
  private readonly listEl: HTMLElement;
  private readonly redirectEl: HTMLInputElement;
  private readonly leaveSandbox = h(
    'button',
    { type: 'button', class: 'btn btn-danger-ghost', 'data-testid': 'clients-sandbox-leave' },
    t('sandbox.leave'),
  );
  private appInfo: AppInfo | null = null;

  // the add form
  private readonly name = input({ 'data-testid': 'client-name', required: true });
  private readonly provider = select(
    { 'data-testid': 'client-provider' },
    PROVIDER_ORDER.map((p) => [p, t(PROVIDER_NAME[p])] as const),
  );
  private readonly environment = select({ 'data-testid': 'client-environment' }, [
    ['sandbox', t('clients.form.env.sandbox')],
    ['production', t('clients.form.env.production')],
    ['custom', t('clients.form.env.custom')],
  ]);
  private readonly clientId = input({ 'data-testid': 'client-id' });
  private readonly secret = secretInput('client-secret');
  private readonly authorizeUrl = input({ 'data-testid': 'client-authorize-url', inputmode: 'url' });
  private readonly tokenUrl = input({ 'data-testid': 'client-token-url', inputmode: 'url' });
  private readonly apiUrl = input({ 'data-testid': 'client-api-url', inputmode: 'url' });
  private readonly authUrl = input({
    'data-testid': 'client-auth-url',
    inputmode: 'url',
    placeholder: t('clients.form.authUrl.placeholder'),
  });
  private readonly redirectUri = input({ 'data-testid': 'client-redirect-uri', inputmode: 'url' });
  // PKCE is on by default (it stops a stolen redirect from connecting someone else's
  // business); unticking it is the explicit opt-out.
  private readonly pkce = h('input', { type: 'checkbox', checked: true, 'data-testid': 'client-pkce' });
  private readonly basicAuth = select({ 'data-testid': 'client-iot-basic-auth' }, [
    ['raw', t('clients.form.basicAuth.raw')],
    ['base64', t('clients.form.basicAuth.base64')],
  ]);
  private readonly body = select({ 'data-testid': 'client-iot-body' }, [
    ['form', t('clients.form.body.form')],
    ['multipart', t('clients.form.body.multipart')],
  ]);
  private readonly formError = errorSlot('client-error');
  private readonly sections: Record<'fa' | 'fedex' | 'iot' | 'custom' | 'customFa', HTMLElement>;

  constructor(private readonly opts: ClientsViewOptions) {
    this.listEl = h('div', { class: 'client-list', 'aria-live': 'polite' });
    this.redirectEl = h('input', {
      type: 'text',
      readonly: true,
      class: 'mono',
      'aria-label': t('clients.redirect.label'),
      'data-testid': 'redirect-uri',
    });
    const copy = h('button', { type: 'button', class: 'btn', 'data-testid': 'redirect-copy' }, t('common.copy'));
    copy.addEventListener(
      'click',
      () => void copyText(this.redirectEl.value, this.redirectEl, t('clients.redirect.copied')),
    );

    this.sections = {
      fa: h(
        'div',
        { class: 'field-group' },
        field(t('clients.redirect.label'), this.redirectUri, t('clients.form.redirect.hint')),
        h('label', { class: 'check' }, this.pkce, ' ', t('clients.form.pkce')),
      ),
      customFa: h(
        'div',
        { class: 'field-group' },
        field(t('clients.form.authorizeUrl'), this.authorizeUrl),
        field(t('clients.form.apiUrl'), this.apiUrl, t('clients.form.apiUrl.hint')),
      ),
      custom: h('div', { class: 'field-group' }, field(t('clients.form.tokenUrl'), this.tokenUrl)),
      iot: h(
        'div',
        { class: 'field-group' },
        field(t('clients.form.authUrl'), this.authUrl, t('clients.form.authUrl.hint', { auth_url: '{auth_url}' })),
        field(t('clients.form.basicAuth'), this.basicAuth),
        field(t('clients.form.body'), this.body),
      ),
      fedex: h('div', { class: 'field-group' }),
    };
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'client-submit' },
      t('clients.form.submit'),
    );
    const form = h(
      'form',
      { novalidate: true, class: 'form', 'aria-labelledby': 'add-client-title' },
      h('h3', { id: 'add-client-title' }, t('clients.form.title')),
      field(t('clients.form.name'), this.name, t('clients.form.name.hint')),
      field(t('clients.form.provider'), this.provider),
      field(t('clients.form.environment'), this.environment),
      field(t('clients.form.clientId'), this.clientId, t('clients.form.clientId.hint')),
      field(t('clients.form.secret'), this.secret, t('clients.form.secret.hint')),
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

    const sandbox = h('button', { type: 'button', class: 'btn', 'data-testid': 'sandbox-start' }, t('sandbox.try'));
    sandbox.addEventListener('click', () => this.opts.onSandbox());
    this.leaveSandbox.addEventListener('click', () => this.opts.onLeaveSandbox());
    this.leaveSandbox.hidden = true;

    this.el = h(
      'section',
      { class: 'clients-view', 'aria-labelledby': 'clients-title', 'data-testid': 'clients-view' },
      h('h2', { id: 'clients-title' }, t('clients.title')),
      settingsCard(),
      opts.team ?? null,
      h(
        'div',
        { class: 'card' },
        h('h3', {}, t('clients.redirect.title')),
        h('p', { class: 'hint' }, t('clients.redirect.hint')),
        h('div', { class: 'inline-actions' }, this.redirectEl, copy),
      ),
      this.listEl,
      h('div', { class: 'card' }, form),
      h(
        'div',
        { class: 'card' },
        h('h3', {}, t('clients.sandbox.title')),
        h('p', { class: 'hint' }, t('clients.sandbox.text')),
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
          h('h3', {}, t(PROVIDER_NAME[p]), ' ', h('span', { class: 'group-count' }, String(mine.length))),
          items.length ? h('ul', { class: 'clients' }, ...items) : h('p', { class: 'muted' }, t('clients.none')),
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
        'aria-label': t('clients.remove.label', { name: c.name }),
      },
      t('clients.remove'),
    );
    const err = errorSlot();
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: t('clients.remove.title', { name: c.name }),
        message: t('clients.remove.message'),
        okLabel: t('clients.remove.ok'),
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
        h(
          'span',
          { class: 'badge env', 'data-env': c.environment, title: t(ENV_EXPLAIN[c.environment]) },
          t(ENV_LABEL[c.environment]),
        ),
        ' ',
        ...(c.sandbox
          ? [h('span', { class: 'badge badge-sandbox', 'data-testid': 'sandbox-badge' }, t('sandbox.badge')), ' ']
          : []),
        h('span', { class: 'mono muted' }, c.client_id),
        ' ',
        h('span', { class: 'muted' }, c.has_secret ? t('clients.hasSecret') : t('clients.noSecret')),
        h(
          'div',
          { class: 'muted small' },
          t('clients.added', { url: c.endpoints.token_url, at: formatInstant(c.created_at) }),
        ),
        c.environment === 'custom' ? h('div', { class: 'hint' }, t('env.custom.explain')) : null,
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
    if (!name || !clientId) return showError(this.formError, t('clients.form.missing'));
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
      api_url: opt(this.apiUrl, p === 'flowaccount' && custom) ?? undefined,
      redirect_uri: opt(this.redirectUri, p === 'flowaccount'),
      pkce: p === 'flowaccount' && this.pkce.checked,
      iot_basic_auth: this.basicAuth.value as IotBasicAuth,
      iot_body: this.body.value as IotBodyEncoding,
    };
    try {
      const client = await api.addClient(input);
      toast(t('clients.addedToast', { name: client.name }));
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
