// The connections list: rows keyed by connection id, grouped by provider, built once
// and updated in place. The shared Ticker drives the countdowns of the rows on screen
// only, so a tick costs O(visible rows) and writes only the text that changed.

import { toCommandError } from '../api';
import type { CommandError } from '../bindings/CommandError';
import type { Connection } from '../bindings/Connection';
import type { ConnectionStatus } from '../bindings/ConnectionStatus';
import type { Provider } from '../bindings/Provider';
import { CountdownText, type Ticker } from '../countdown';
import { h, setText } from '../dom';
import { errorLine } from '../errors';
import { STATUS_LABEL, parseInstant, statusFrom, type StatusInputs } from '../status';

export type RowAction = 'refresh' | 'logout' | 'copy' | 'reconnect';

/** What the row buttons do; a rejection (a CommandError) is shown on the row. */
export type RowActions = Record<RowAction, (conn: Connection) => Promise<unknown>>;

export interface VisibilityTracker {
  observe(el: Element): void;
  unobserve(el: Element): void;
  disconnect(): void;
}
export type VisibilityFactory = (
  scrollRoot: Element,
  onChange: (el: Element, visible: boolean) => void,
) => VisibilityTracker;

/** IntersectionObserver where there is one; otherwise every row counts as visible. */
export const defaultVisibility: VisibilityFactory = (scrollRoot, onChange) => {
  if (typeof IntersectionObserver === 'undefined') {
    return {
      observe: (el) => onChange(el, true),
      unobserve: () => {},
      disconnect: () => {},
    };
  }
  const io = new IntersectionObserver(
    (entries) => {
      for (const e of entries) onChange(e.target, e.isIntersecting);
    },
    { root: scrollRoot, rootMargin: '200px 0px' },
  );
  return io;
};

export interface ListOptions {
  ticker: Ticker;
  actions: RowActions;
  onSelect: (conn: Connection | null) => void;
  onCountChange?: (count: number) => void;
  /** The scrolling element rows are visible in (defaults to the list itself). */
  scrollRoot?: Element;
  visibility?: VisibilityFactory;
  now?: () => number;
}

export const PROVIDER_ORDER: readonly Provider[] = ['flowaccount', 'fedex', 'iot'];
export const GROUP_TITLE: Record<Provider, string> = {
  flowaccount: 'FlowAccount businesses',
  fedex: 'FedEx projects',
  iot: 'IoT accounts',
};
const LOGOUT_LABEL: Record<Provider, string> = {
  flowaccount: 'Disconnect',
  fedex: 'Disconnect',
  iot: 'Log out',
};

/** The second line of a row: what identifies the account at the provider. */
export function subtitle(conn: Connection): string {
  switch (conn.provider) {
    case 'flowaccount':
      return conn.support_code != null ? `supportCode ${conn.support_code}` : 'supportCode unknown';
    case 'fedex': {
      const grant = conn.grant ?? 'client_credentials';
      return conn.child_key != null ? `${grant} · child ${conn.child_key}` : grant;
    }
    case 'iot':
      return conn.username ?? conn.label;
  }
}

interface Row {
  id: string;
  conn: Connection;
  inputs: StatusInputs;
  status: ConnectionStatus | null;
  el: HTMLElement;
  label: HTMLElement;
  sub: HTMLElement;
  client: HTMLElement;
  env: HTMLElement;
  chip: HTMLElement;
  access: CountdownText;
  refresh: CountdownText | null;
  refreshKey: HTMLElement | null;
  error: HTMLElement;
  buttons: Record<RowAction, HTMLButtonElement>;
  actionError: CommandError | null;
  visible: boolean;
  busy: RowAction | null;
  /** Lower-case text the filter box matches against. */
  search: string;
}

interface Group {
  provider: Provider;
  section: HTMLElement;
  count: HTMLElement;
  body: HTMLElement;
  rows: Row[]; // sorted as displayed
}

const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
function compareRows(a: Connection, b: Connection): number {
  return collator.compare(a.label, b.label) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class ConnectionList {
  readonly el: HTMLElement;
  private readonly rows = new Map<string, Row>();
  private readonly byEl = new WeakMap<Element, Row>();
  private readonly groups: Record<Provider, Group>;
  private readonly visible = new Set<Row>();
  private readonly tracker: VisibilityTracker;
  private readonly unsubscribe: () => void;
  private readonly now: () => number;
  private selectedId: string | null = null;
  private tabStop: Row | null = null;
  private query = '';

  constructor(private readonly opts: ListOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.el = h('div', {
      class: 'conn-list',
      role: 'grid',
      'aria-label': 'Connections',
      'aria-rowcount': 0,
      'data-testid': 'connection-list',
    });
    const groups = {} as Record<Provider, Group>;
    for (const p of PROVIDER_ORDER) {
      const titleId = `group-${p}`;
      const count = h('span', { class: 'group-count' }, '0');
      const body = h('div', { role: 'rowgroup', class: 'group-rows', 'aria-labelledby': titleId });
      const section = h(
        'section',
        { class: 'group', 'data-group': p, hidden: true },
        h('h2', { class: 'group-title', id: titleId }, GROUP_TITLE[p], ' ', count),
        body,
      );
      groups[p] = { provider: p, section, count, body, rows: [] };
      this.el.appendChild(section);
    }
    this.groups = groups;
    this.tracker = (opts.visibility ?? defaultVisibility)(opts.scrollRoot ?? this.el, (el, vis) =>
      this.onVisibility(el, vis),
    );
    this.el.addEventListener('click', (e) => this.onClick(e));
    this.el.addEventListener('keydown', (e) => this.onKeyDown(e));
    this.unsubscribe = opts.ticker.subscribe((now) => this.tick(now));
  }

  get size(): number {
    return this.rows.size;
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  get(id: string): Connection | undefined {
    return this.rows.get(id)?.conn;
  }

  /** The row element of a connection (tests, highlight). */
  rowElement(id: string): HTMLElement | undefined {
    return this.rows.get(id)?.el;
  }

  /** Replace the whole list (first load): rows built off-document, one append per group. */
  setAll(conns: Connection[]): void {
    for (const row of this.rows.values()) this.tracker.unobserve(row.el);
    this.rows.clear();
    this.visible.clear();
    const now = this.now();
    const sorted = [...conns].sort(compareRows);
    for (const p of PROVIDER_ORDER) {
      const g = this.groups[p];
      g.rows = [];
      g.body.textContent = '';
    }
    const frags = new Map<Provider, DocumentFragment>();
    for (const conn of sorted) {
      const row = this.buildRow(conn, now);
      this.rows.set(conn.id, row);
      const g = this.groups[conn.provider];
      g.rows.push(row);
      let f = frags.get(conn.provider);
      if (!f) frags.set(conn.provider, (f = document.createDocumentFragment()));
      f.appendChild(row.el);
    }
    for (const [p, f] of frags) this.groups[p].body.appendChild(f);
    for (const row of this.rows.values()) this.tracker.observe(row.el);
    if (this.selectedId !== null && !this.rows.has(this.selectedId)) this.selectedId = null;
    this.afterMembershipChange();
  }

  /** Insert a new row or update an existing one in place (the same DOM node). */
  upsert(conn: Connection): void {
    const now = this.now();
    const row = this.rows.get(conn.id);
    if (!row) {
      const fresh = this.buildRow(conn, now);
      this.rows.set(conn.id, fresh);
      this.place(fresh);
      this.tracker.observe(fresh.el);
      this.afterMembershipChange();
      return;
    }
    const old = row.conn;
    // An event older than what we show (e.g. buffered during the first load) is ignored.
    if (Date.parse(conn.updated_at) < Date.parse(old.updated_at)) return;
    row.conn = conn;
    if (old.provider !== conn.provider || compareRows(old, conn) !== 0) {
      this.unplace(row);
      this.place(row);
      this.afterMembershipChange();
    }
    this.fill(row, now);
    if (this.selectedId === conn.id) this.opts.onSelect(conn);
  }

  remove(id: string): void {
    const row = this.rows.get(id);
    if (!row) return;
    this.tracker.unobserve(row.el);
    this.visible.delete(row);
    this.rows.delete(id);
    this.unplace(row);
    if (this.selectedId === id) {
      this.selectedId = null;
      this.opts.onSelect(null);
    }
    this.afterMembershipChange();
  }

  /** Show an error on a row (e.g. a reconnect that failed outside the row's buttons). */
  setRowError(id: string, err: CommandError | null): void {
    const row = this.rows.get(id);
    if (!row) return;
    row.actionError = err;
    this.renderError(row);
  }

  select(id: string | null, focus = false): void {
    const prev = this.selectedId !== null ? this.rows.get(this.selectedId) : undefined;
    const next = id !== null ? this.rows.get(id) : undefined;
    if (prev && prev !== next) prev.el.setAttribute('aria-selected', 'false');
    this.selectedId = next ? next.id : null;
    if (next) {
      next.el.setAttribute('aria-selected', 'true');
      this.setTabStop(next);
      if (focus) next.el.focus();
    } else {
      this.setTabStop(this.firstRow());
    }
    if (prev !== next) this.opts.onSelect(next ? next.conn : null);
  }

  get selected(): string | null {
    return this.selectedId;
  }

  /** Show only rows whose label, account, client or environment contains `query`. */
  filter(query: string): void {
    this.query = query.trim().toLowerCase();
    for (const row of this.rows.values()) this.applyFilter(row);
    this.afterMembershipChange();
  }

  private applyFilter(row: Row): void {
    const hide = this.query !== '' && !row.search.includes(this.query);
    if (row.el.hidden !== hide) row.el.hidden = hide;
  }

  /** Rows shown (after the filter). */
  get shownCount(): number {
    let n = 0;
    for (const row of this.rows.values()) if (!row.el.hidden) n += 1;
    return n;
  }

  /** Select, scroll to and briefly mark a row (a connection that just arrived). */
  highlight(id: string): void {
    const row = this.rows.get(id);
    if (!row) return;
    this.select(id);
    row.el.scrollIntoView?.({ block: 'nearest' });
    row.el.classList.add('flash');
    setTimeout(() => row.el.classList.remove('flash'), 2500);
  }

  dispose(): void {
    this.unsubscribe();
    this.tracker.disconnect();
  }

  // ---- ticking ---------------------------------------------------------------------

  private tick(now: number): void {
    for (const row of this.visible) this.updateTimes(row, now);
  }

  private updateTimes(row: Row, now: number): void {
    row.access.update(now);
    row.refresh?.update(now);
    const status = statusFrom(row.inputs, now);
    if (status !== row.status) this.applyStatus(row, status);
  }

  private onVisibility(el: Element, isVisible: boolean): void {
    const row = this.byEl.get(el);
    if (!row || !this.rows.has(row.id)) return;
    row.visible = isVisible;
    if (isVisible) {
      this.visible.add(row);
      this.updateTimes(row, this.now()); // it may have been stale while off screen
    } else {
      this.visible.delete(row);
    }
  }

  // ---- building and filling rows ---------------------------------------------------

  private buildRow(conn: Connection, now: number): Row {
    const p = conn.provider;
    const button = (action: RowAction, text: string, testid: string) =>
      h('button', { type: 'button', class: `btn btn-row act-${action}`, 'data-action': action, 'data-testid': testid, tabindex: -1 }, text);
    const buttons: Record<RowAction, HTMLButtonElement> = {
      refresh: button('refresh', 'Refresh', 'row-refresh'),
      logout: button('logout', LOGOUT_LABEL[p], 'row-logout'),
      copy: button('copy', 'Copy token', 'row-copy'),
      reconnect: button('reconnect', 'Reconnect', 'row-reconnect'),
    };
    buttons.reconnect.hidden = true;
    buttons.reconnect.classList.add('btn-primary');

    const label = h('span', { class: 'row-label' });
    const sub = h('span', { class: 'row-sub' });
    const client = h('span', { class: 'row-client' });
    const env = h('span', { class: 'badge env' });
    const chip = h('span', { class: 'chip', 'data-testid': 'status-chip' });
    const access = new CountdownText(null, now);
    const accessEl = h('span', { class: 'countdown', 'data-testid': 'access-countdown' }, access.node);

    let refresh: CountdownText | null = null;
    let refreshKey: HTMLElement | null = null;
    let refreshCell: HTMLElement;
    if (p === 'fedex') {
      // FedEx issues no refresh token: "refresh" requests a new access token.
      refreshCell = h('div', { role: 'gridcell', class: 'cell cell-expiry muted' },
        h('span', { class: 'k' }, 'Refresh'), ' ', h('span', { class: 'countdown' }, 'none'));
    } else {
      refresh = new CountdownText(null, now);
      refreshKey = h('span', { class: 'k' }, 'Refresh');
      refreshCell = h('div', { role: 'gridcell', class: 'cell cell-expiry' }, refreshKey, ' ',
        h('span', { class: 'countdown', 'data-testid': 'refresh-countdown' }, refresh.node));
    }
    const error = h('div', { role: 'gridcell', class: 'cell cell-error', 'data-testid': 'row-error', 'aria-live': 'polite' });
    error.hidden = true;

    const el = h(
      'div',
      {
        role: 'row',
        class: `row provider-${p}`,
        tabindex: -1,
        'aria-selected': 'false',
        'data-testid': 'connection-row',
        'data-connection-id': conn.id,
        'data-provider': p,
      },
      h('div', { role: 'gridcell', class: 'cell cell-name' }, label, sub),
      h('div', { role: 'gridcell', class: 'cell cell-client' }, client, ' ', env),
      h('div', { role: 'gridcell', class: 'cell cell-status' }, chip),
      h('div', { role: 'gridcell', class: 'cell cell-expiry' }, h('span', { class: 'k' }, 'Access'), ' ', accessEl),
      refreshCell,
      h('div', { role: 'gridcell', class: 'cell cell-actions' },
        buttons.reconnect, buttons.refresh, buttons.copy, buttons.logout),
      error,
    );
    const row: Row = {
      id: conn.id, conn, inputs: { state: conn.state, hasError: false, accessAt: null, refreshAt: null },
      status: null, el, label, sub, client, env, chip, access, refresh, refreshKey, error, buttons,
      actionError: null, visible: false, busy: null, search: '',
    };
    this.byEl.set(el, row);
    this.fill(row, now);
    return row;
  }

  /** Copy a connection's data into its row, writing only what differs. */
  private fill(row: Row, now: number): void {
    const c = row.conn;
    setText(row.label, c.label);
    setText(row.sub, subtitle(c));
    setText(row.client, c.client_name);
    setText(row.env, c.environment);
    row.search = `${c.label} ${subtitle(c)} ${c.client_name} ${c.environment}`.toLowerCase();
    this.applyFilter(row);
    if (row.env.dataset.env !== c.environment) row.env.dataset.env = c.environment;
    row.inputs = {
      state: c.state,
      hasError: c.last_error != null,
      accessAt: parseInstant(c.access_expires?.at),
      refreshAt: parseInstant(c.refresh_expires?.at),
    };
    row.access.setTarget(row.inputs.accessAt, now);
    if (row.refresh && row.refreshKey) {
      row.refresh.setTarget(row.inputs.refreshAt, now);
      setText(row.refreshKey, c.refresh_expires?.source === 'estimated' ? 'Refresh (estimated)' : 'Refresh');
    }
    const logoutText = c.state === 'logout_pending' ? 'Retry logout' : LOGOUT_LABEL[c.provider];
    setText(row.buttons.logout, logoutText);
    for (const [action, b] of Object.entries(row.buttons) as [RowAction, HTMLButtonElement][]) {
      const name = `${b.textContent ?? action} ${c.label}`;
      if (b.getAttribute('aria-label') !== name) b.setAttribute('aria-label', name);
    }
    this.applyStatus(row, statusFrom(row.inputs, now));
    this.renderError(row);
  }

  private applyStatus(row: Row, status: ConnectionStatus): void {
    if (row.status !== null) row.chip.classList.remove(`status-${row.status}`);
    row.chip.classList.add(`status-${status}`);
    setText(row.chip, STATUS_LABEL[status]);
    row.status = status;
    row.el.dataset.status = status;
    row.buttons.reconnect.hidden = status !== 'reauthorization_required';
  }

  private renderError(row: Row): void {
    const e = row.actionError ?? row.conn.last_error ?? null;
    if (e === null) {
      if (!row.error.hidden) {
        row.error.hidden = true;
        row.error.textContent = '';
      }
      return;
    }
    setText(row.error, errorLine(e));
    row.error.hidden = false;
  }

  // ---- placement in groups -----------------------------------------------------------

  private place(row: Row): void {
    const g = this.groups[row.conn.provider];
    let lo = 0;
    let hi = g.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareRows(g.rows[mid]!.conn, row.conn) < 0) lo = mid + 1;
      else hi = mid;
    }
    const before = g.rows[lo];
    g.rows.splice(lo, 0, row);
    g.body.insertBefore(row.el, before ? before.el : null);
  }

  private unplace(row: Row): void {
    for (const g of Object.values(this.groups)) {
      const i = g.rows.indexOf(row);
      if (i >= 0) {
        g.rows.splice(i, 1);
        break;
      }
    }
    row.el.remove();
  }

  private afterMembershipChange(): void {
    for (const g of Object.values(this.groups)) {
      const shown = this.query === '' ? g.rows.length : g.rows.filter((r) => !r.el.hidden).length;
      setText(g.count, shown === g.rows.length ? String(shown) : `${shown} of ${g.rows.length}`);
      g.section.hidden = shown === 0;
    }
    this.el.setAttribute('aria-rowcount', String(this.rows.size));
    const sel = this.selectedId !== null ? this.rows.get(this.selectedId) : undefined;
    this.setTabStop(sel ?? this.firstRow());
    this.opts.onCountChange?.(this.rows.size);
  }

  // ---- selection, keyboard, clicks ---------------------------------------------------

  private orderedRows(): Row[] {
    return PROVIDER_ORDER.flatMap((p) => this.groups[p].rows).filter((r) => !r.el.hidden);
  }

  private firstRow(): Row | null {
    for (const p of PROVIDER_ORDER) {
      const r = this.groups[p].rows.find((row) => !row.el.hidden);
      if (r) return r;
    }
    return null;
  }

  /** Roving tabindex: one row (and its buttons) is in the tab order. */
  private setTabStop(row: Row | null): void {
    if (this.tabStop === row) return;
    if (this.tabStop && this.rows.has(this.tabStop.id)) {
      this.tabStop.el.tabIndex = -1;
      for (const b of Object.values(this.tabStop.buttons)) b.tabIndex = -1;
    }
    this.tabStop = row;
    if (row) {
      row.el.tabIndex = 0;
      for (const b of Object.values(row.buttons)) b.tabIndex = 0;
    }
  }

  private rowOf(target: EventTarget | null): Row | undefined {
    const el = target instanceof Element ? target.closest('[data-testid="connection-row"]') : null;
    return el ? this.byEl.get(el) : undefined;
  }

  private onClick(e: MouseEvent): void {
    const row = this.rowOf(e.target);
    if (!row) return;
    const btn = e.target instanceof Element ? e.target.closest('button[data-action]') : null;
    if (btn instanceof HTMLButtonElement) {
      void this.run(row, btn.dataset.action as RowAction);
      return;
    }
    this.select(row.id);
  }

  private onKeyDown(e: KeyboardEvent): void {
    const row = this.rowOf(e.target);
    if (!row) return;
    let target: Row | undefined;
    const ordered = () => this.orderedRows();
    switch (e.key) {
      case 'ArrowDown': {
        const list = ordered();
        target = list[list.indexOf(row) + 1];
        break;
      }
      case 'ArrowUp': {
        const list = ordered();
        target = list[list.indexOf(row) - 1];
        break;
      }
      case 'Home':
        target = ordered()[0];
        break;
      case 'End': {
        const list = ordered();
        target = list[list.length - 1];
        break;
      }
      case 'Enter':
      case ' ':
        if (e.target === row.el) {
          e.preventDefault();
          this.select(row.id);
        }
        return;
      default:
        return;
    }
    e.preventDefault();
    if (target) this.select(target.id, true);
  }

  /** Run a row action with the button busy; failures stay on the row in plain words. */
  async run(row: Row | string, action: RowAction): Promise<void> {
    const r = typeof row === 'string' ? this.rows.get(row) : row;
    if (!r || r.busy !== null) return;
    const btn = r.buttons[action];
    r.busy = action;
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    r.el.classList.add('busy');
    try {
      await this.opts.actions[action](r.conn);
      r.actionError = null;
    } catch (err) {
      r.actionError = toCommandError(err);
    } finally {
      r.busy = null;
      btn.disabled = false;
      btn.removeAttribute('aria-busy');
      r.el.classList.remove('busy');
      if (this.rows.get(r.id) === r) this.renderError(r);
    }
  }
}
