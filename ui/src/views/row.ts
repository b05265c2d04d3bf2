// One connection's row in the list, and a provider group's header: elements built once
// and recycled (see list.ts), bound to one entry at a time, writing only what differs.

import type { CommandError } from '../bindings/CommandError';
import type { ConnectionStatus } from '../bindings/ConnectionStatus';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Environment } from '../bindings/Environment';
import type { LastError } from '../bindings/LastError';
import type { Provider } from '../bindings/Provider';
import { CountdownText } from '../countdown';
import { h, setText } from '../dom';
import { ACTION_LABEL, type ErrorAction, describeError, errorLine } from '../errors';
import { formatShortInstant } from '../i18n/format';
import { type PlainKey, t } from '../i18n/index';
import { type StatusInputs, statusFrom, statusLabel, stillActive } from '../status';
import { titleOf } from './identity';

export type RowAction = 'refresh' | 'logout' | 'copy' | 'reconnect' | 'advice';

export const GROUP_TITLE: Record<Provider, PlainKey> = {
  flowaccount: 'group.flowaccount',
  fedex: 'group.fedex',
  iot: 'group.iot',
};

const LOGOUT_LABEL: Record<Provider, PlainKey> = {
  flowaccount: 'row.disconnect',
  fedex: 'row.disconnect',
  iot: 'row.logout',
};

export const ENV_LABEL: Record<Environment, PlainKey> = {
  sandbox: 'env.sandbox',
  production: 'env.production',
  custom: 'env.custom',
};

/** What an environment badge means, in words (shown beside it in the details, and as its title). */
export const ENV_EXPLAIN: Record<Environment, PlainKey> = {
  sandbox: 'env.sandbox.explain',
  production: 'env.production.explain',
  custom: 'env.custom.explain',
};

/** The second line of a row: what identifies the account at the provider. */
export function subtitle(conn: ConnectionSummary): string {
  switch (conn.provider) {
    case 'flowaccount':
      return conn.support_code != null
        ? t('row.customerCode', { code: conn.support_code })
        : t('row.customerCode.unknown');
    case 'fedex': {
      const grant = conn.grant ?? 'client_credentials';
      return conn.child_key != null ? t('row.fedexChild', { grant, key: conn.child_key }) : grant;
    }
    case 'iot':
      return conn.username ?? conn.label;
  }
}

/**
 * Team mode: who last refreshed the connection (first: the news) and who connected it,
 * member (their database role) and machine; `null` on this desktop's own store.
 */
export function teamLine(conn: ConnectionSummary): string | null {
  const by = conn.connected_by;
  if (by == null) return null;
  const r = conn.refreshed_by;
  if (r == null) return t('row.team.connected', { member: by.member, machine: by.machine });
  return t('row.team.refreshed', {
    member: r.member,
    machine: r.machine,
    at: formatShortInstant(r.at),
    cmember: by.member,
    cmachine: by.machine,
  });
}

/** One connection as data: all of them exist, whether on screen or not. */
export interface Entry {
  id: string;
  conn: ConnectionSummary;
  /** Instants parsed once per update, not per tick. */
  inputs: StatusInputs;
  /** Lower-case text the filter box matches against. */
  search: string;
  actionError: CommandError | null;
  busy: RowAction | null;
  flashUntil: number;
}

export function entryError(e: Entry): CommandError | LastError | null {
  return e.actionError ?? e.conn.last_error ?? null;
}

/** A group header; one per provider, reused. */
export class GroupView {
  readonly el: HTMLElement;
  readonly count: HTMLElement;

  constructor(readonly provider: Provider) {
    this.count = h('span', { class: 'group-count' }, '0');
    this.el = h(
      'div',
      { role: 'row', class: 'group-title', 'data-group': provider },
      // The row header holds the heading (an h2 may not take the rowheader role: axe aria-allowed-role).
      h(
        'div',
        { role: 'rowheader', class: 'group-heading' },
        h('h2', { class: 'group-heading-text' }, t(GROUP_TITLE[provider]), ' ', this.count),
      ),
    );
  }
}

/** A row element and its parts, bound to one entry at a time. */
export class RowView {
  readonly el: HTMLElement;
  readonly label: HTMLElement;
  readonly sub: HTMLElement;
  readonly client: HTMLElement;
  /** Team mode: who connected it and who last refreshed it (hidden otherwise). */
  readonly team: HTMLElement;
  readonly env: HTMLElement;
  readonly sandbox: HTMLElement;
  readonly chip: HTMLElement;
  readonly access: CountdownText;
  readonly refresh: CountdownText | null;
  readonly refreshKey: HTMLElement | null;
  readonly error: HTMLElement;
  readonly errorCell: HTMLElement;
  /** The action the shown error offers (none, or Reconnect: the row's own button). */
  advice: ErrorAction | null = null;
  readonly buttons: Record<RowAction, HTMLButtonElement>;
  entry: Entry | null = null;
  status: ConnectionStatus | null = null;
  top = -1;

  constructor(
    readonly provider: Provider,
    now: number,
  ) {
    const button = (action: RowAction, text: string, testid: string) =>
      h(
        'button',
        {
          type: 'button',
          class: `btn btn-row act-${action}`,
          'data-action': action,
          'data-testid': testid,
          tabindex: -1,
        },
        text,
      );
    this.buttons = {
      refresh: button('refresh', t('row.refresh'), 'row-refresh'),
      logout: button('logout', t(LOGOUT_LABEL[provider]), 'row-logout'),
      copy: button('copy', t('row.copy'), 'row-copy'),
      reconnect: button('reconnect', t('row.reconnect'), 'row-reconnect'),
      advice: button('advice', '', 'row-advice'),
    };
    this.buttons.advice.hidden = true;
    this.buttons.advice.classList.add('btn-link');
    this.buttons.reconnect.hidden = true;
    this.buttons.reconnect.classList.add('btn-primary');

    this.label = h('span', { class: 'row-label' });
    this.sub = h('span', { class: 'row-sub' });
    this.client = h('span', { class: 'row-client' });
    this.team = h('span', { class: 'row-team', 'data-testid': 'row-team' });
    this.team.hidden = true;
    this.env = h('span', { class: 'badge env' });
    this.sandbox = h(
      'span',
      { class: 'badge badge-sandbox', 'data-testid': 'sandbox-badge', title: t('row.sandboxBadge.title') },
      t('row.sandboxBadge'),
    );
    this.sandbox.hidden = true;
    this.chip = h('span', { class: 'chip', 'data-testid': 'status-chip' });
    this.access = new CountdownText(null, now);
    const accessEl = h('span', { class: 'countdown', 'data-testid': 'access-countdown' }, this.access.node);

    let refreshCell: HTMLElement;
    if (provider === 'fedex') {
      // FedEx issues no refresh token: "refresh" requests a new access token.
      this.refresh = null;
      this.refreshKey = null;
      refreshCell = h(
        'div',
        { role: 'gridcell', class: 'cell cell-expiry muted' },
        h('span', { class: 'k' }, t('row.refreshToken')),
        ' ',
        h('span', { class: 'countdown' }, t('row.refreshToken.none')),
      );
    } else {
      this.refresh = new CountdownText(null, now);
      this.refreshKey = h('span', { class: 'k' }, t('row.refreshToken'));
      refreshCell = h(
        'div',
        { role: 'gridcell', class: 'cell cell-expiry' },
        this.refreshKey,
        ' ',
        h('span', { class: 'countdown', 'data-testid': 'refresh-countdown' }, this.refresh.node),
      );
    }
    this.error = h('span', { class: 'error-text', 'data-testid': 'row-error', 'aria-live': 'polite' });
    this.error.hidden = true;
    // The error's own button where it has one ("Open Clients & settings", "Start the
    // sandbox"); Reconnect is the row's own button.
    this.errorCell = h('div', { role: 'gridcell', class: 'cell cell-error' }, this.error, ' ', this.buttons.advice);
    this.errorCell.hidden = true;

    this.el = h(
      'div',
      {
        role: 'row',
        class: `row provider-${provider}`,
        tabindex: -1,
        'aria-selected': 'false',
        'data-testid': 'connection-row',
        'data-provider': provider,
      },
      h('div', { role: 'gridcell', class: 'cell cell-name' }, this.label, this.sub),
      h(
        'div',
        { role: 'gridcell', class: 'cell cell-client' },
        h('span', { class: 'row-client-line' }, this.client, ' ', this.env, ' ', this.sandbox),
        this.team,
      ),
      h('div', { role: 'gridcell', class: 'cell cell-status' }, this.chip),
      h(
        'div',
        { role: 'gridcell', class: 'cell cell-expiry' },
        h('span', { class: 'k' }, t('row.access')),
        ' ',
        accessEl,
      ),
      refreshCell,
      h(
        'div',
        { role: 'gridcell', class: 'cell cell-actions' },
        this.buttons.reconnect,
        this.buttons.refresh,
        this.buttons.copy,
        this.buttons.logout,
      ),
      this.errorCell,
    );
  }

  /** Show `entry` (another connection, or new data of the same one): only differences are written. */
  bind(entry: Entry, now: number): void {
    const c = entry.conn;
    if (this.entry !== entry) {
      this.entry = entry;
      this.el.dataset.connectionId = entry.id;
    }
    setText(this.label, titleOf(c));
    setText(this.sub, subtitle(c));
    setText(this.client, c.client_name);
    const team = teamLine(c);
    if (this.team.hidden !== (team === null)) this.team.hidden = team === null;
    if (team !== null) {
      setText(this.team, team);
      if (this.team.title !== team) this.team.title = team;
      // The instant itself (the text shows minutes): tests tell one refresh from the next.
      const at = c.refreshed_by?.at ?? '';
      if (this.team.dataset.refreshedAt !== at) this.team.dataset.refreshedAt = at;
    }
    if (this.env.dataset.env !== c.environment) {
      this.env.dataset.env = c.environment;
      setText(this.env, t(ENV_LABEL[c.environment]));
      this.env.title = t(ENV_EXPLAIN[c.environment]);
    }
    if (this.sandbox.hidden === (c.sandbox === true)) this.sandbox.hidden = c.sandbox !== true;
    this.access.setTarget(entry.inputs.accessAt, now);
    if (this.refresh && this.refreshKey) {
      this.refresh.setTarget(entry.inputs.refreshAt, now);
      setText(
        this.refreshKey,
        c.refresh_expires?.source === 'estimated' ? t('row.refreshToken.estimated') : t('row.refreshToken'),
      );
    }
    setText(this.buttons.logout, c.state === 'logout_pending' ? t('row.retryLogout') : t(LOGOUT_LABEL[c.provider]));
    for (const [action, b] of Object.entries(this.buttons) as [RowAction, HTMLButtonElement][]) {
      const name = t('row.buttonLabel', { action: b.textContent ?? action, label: titleOf(c) });
      if (b.getAttribute('aria-label') !== name) b.setAttribute('aria-label', name);
    }
    this.applyStatus(statusFrom(entry.inputs, now), now);
    this.renderError();
    this.renderBusy();
    this.el.classList.toggle('flash', entry.flashUntil > Date.now());
  }

  /** A tick: countdowns, and the chip when the status (or its words) change. */
  tick(now: number): void {
    if (!this.entry) return;
    this.access.update(now);
    this.refresh?.update(now);
    const status = statusFrom(this.entry.inputs, now);
    if (status !== this.status) this.applyStatus(status, now);
    else if (status === 'error') this.writeChip(now);
  }

  applyStatus(status: ConnectionStatus, now: number): void {
    if (status === this.status) return;
    if (this.status !== null) this.chip.classList.remove(`status-${this.status}`);
    this.chip.classList.add(`status-${status}`);
    this.status = status;
    this.writeChip(now);
    this.el.dataset.status = status;
    this.buttons.reconnect.hidden = status !== 'reauthorization_required';
    // Re-authorization needed: the refresh token is of no use, so no countdown for it.
    this.refresh?.suppress(status === 'reauthorization_required' ? t('time.absent') : null, now);
  }

  /** The chip's words: "Active · last refresh failed" while a failed refresh left a valid access token. */
  private writeChip(now: number): void {
    if (this.status === null || !this.entry) return;
    const still = stillActive(this.status, this.entry.inputs, now);
    this.chip.classList.toggle('status-active', still || this.status === 'active');
    this.chip.classList.toggle('status-error', !still && this.status === 'error');
    setText(this.chip, statusLabel(this.status, this.entry.inputs, now));
  }

  renderError(): void {
    const e = this.entry ? entryError(this.entry) : null;
    this.el.classList.toggle('has-error', e !== null);
    if (e === null) {
      if (!this.error.hidden) {
        this.error.hidden = true;
        this.errorCell.hidden = true;
        this.error.textContent = '';
        this.error.removeAttribute('title');
      }
      this.advice = null;
      this.buttons.advice.hidden = true;
      return;
    }
    const c = this.entry!.conn;
    const ctx = { provider: c.provider, child: c.child_key != null };
    const line = errorLine(e, ctx);
    setText(this.error, line);
    if (this.error.title !== line) this.error.title = line; // the whole text, if clamped
    this.error.hidden = false;
    this.errorCell.hidden = false;
    const action = describeError(e, ctx).action;
    this.advice = action === 'reconnect' ? null : action;
    this.buttons.advice.hidden = this.advice === null;
    if (this.advice !== null) setText(this.buttons.advice, t(ACTION_LABEL[this.advice]));
  }

  renderBusy(): void {
    const busy = this.entry?.busy ?? null;
    this.el.classList.toggle('busy', busy !== null);
    for (const [action, b] of Object.entries(this.buttons) as [RowAction, HTMLButtonElement][]) {
      // aria-disabled, not disabled: a disabled button drops the keyboard focus (to the
      // page), and the person pressing Enter on it would have to find their place again.
      // A busy row ignores further actions (ConnectionList.run).
      const on = action === busy;
      if (on) {
        b.setAttribute('aria-busy', 'true');
        b.setAttribute('aria-disabled', 'true');
      } else if (b.hasAttribute('aria-busy')) {
        b.removeAttribute('aria-busy');
        b.removeAttribute('aria-disabled');
      }
    }
  }

  setSelected(selected: boolean): void {
    const v = selected ? 'true' : 'false';
    if (this.el.getAttribute('aria-selected') !== v) this.el.setAttribute('aria-selected', v);
  }

  /** Roving tabindex: one row (and its buttons) is in the tab order. */
  setTabStop(on: boolean): void {
    const t = on ? 0 : -1;
    if (this.el.tabIndex === t) return;
    this.el.tabIndex = t;
    for (const b of Object.values(this.buttons)) b.tabIndex = t;
  }
}
