// The details panel of the selected connection: what support staff inspect — scopes,
// token type, expiries with their source, decoded JWT, last refresh/error, history.
// The list holds lean summaries; the full connection is fetched for the one shown.

import { api, toCommandError } from '../api';
import type { Connection } from '../bindings/Connection';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Expiry } from '../bindings/Expiry';
import type { ExpirySource } from '../bindings/ExpirySource';
import type { HistoryEntry } from '../bindings/HistoryEntry';
import { CountdownText, type Ticker } from '../countdown';
import { formatInstant, h, replaceChildren } from '../dom';
import { errorLine } from '../errors';
import { t } from '../i18n/index';
import { STATUS_LABEL, parseInstant, statusAt } from '../status';
import { keepFreshSwitch } from './keep-fresh';
import { GROUP_TITLE, subtitle } from './list';

export const SOURCE_LABEL: Record<ExpirySource, string> = {
  relative_seconds: 'expires_in, seconds from the response',
  epoch_seconds: 'expires_in, epoch seconds',
  epoch_millis: 'expires_in, epoch milliseconds',
  jwt_exp: "the JWT's exp claim",
  estimated: 'estimated from the provider documentation',
};

function json(value: unknown): HTMLElement {
  // Focusable: it may scroll sideways, and the keyboard must reach what it hides (axe
  // scrollable-region-focusable).
  return h('pre', { class: 'json', tabindex: 0 }, JSON.stringify(value, null, 2));
}

export class DetailsPanel {
  readonly el: HTMLElement;
  private readonly content: HTMLElement;
  /** What the list knows at once, then the full connection once fetched. */
  private current: ConnectionSummary | null = null;
  private full: Connection | null = null;
  private history: HistoryEntry[] | null = null;
  private historyError: string | null = null;
  private countdowns: { c: CountdownText }[] = [];
  private loadSeq = 0;
  private readonly unsubscribe: () => void;

  constructor(ticker: Ticker) {
    this.content = h('div', { class: 'details-content' });
    this.el = h(
      'aside',
      { class: 'details', 'data-testid': 'details-panel', 'aria-label': 'Connection details', tabindex: -1 },
      this.content,
    );
    this.unsubscribe = ticker.subscribe((now) => {
      for (const { c } of this.countdowns) c.update(now);
    });
    this.show(null);
  }

  get connectionId(): string | null {
    return this.current?.id ?? null;
  }

  /**
   * Show a connection (null: the hint) and fetch its details. For the connection already
   * shown (its data changed), the details are fetched again, keeping what is shown meanwhile.
   */
  show(conn: ConnectionSummary | null): void {
    const changed = conn?.id !== this.current?.id;
    this.current = conn;
    if (changed) {
      this.full = null;
      this.history = null;
      this.historyError = null;
    }
    this.render();
    if (conn) void this.reload();
  }

  /** Fetch `connection_details` again (selection, or a `history_added` event). */
  async reload(): Promise<void> {
    const conn = this.current;
    if (!conn) return;
    const seq = ++this.loadSeq;
    try {
      const d = await api.connectionDetails(conn.id);
      if (seq !== this.loadSeq || this.current?.id !== conn.id) return;
      this.current = d.connection;
      this.full = d.connection;
      this.history = d.history;
      this.historyError = null;
    } catch (e) {
      if (seq !== this.loadSeq) return;
      this.historyError = errorLine(toCommandError(e));
    }
    this.render();
  }

  dispose(): void {
    this.unsubscribe();
  }

  private render(): void {
    this.countdowns = [];
    const c = this.current;
    if (!c) {
      replaceChildren(this.content, h('p', { class: 'muted' }, 'Select a connection to see its tokens and history.'));
      return;
    }
    // Until the details arrive, what only the full connection has reads "…".
    const f = this.full;
    const later = '…';
    const now = Date.now();
    const rows: [string, Node | string][] = [
      ['Provider', GROUP_TITLE[c.provider]],
      ['Account', subtitle(c)],
      ['Client', `${c.client_name} (${c.environment})`],
      ['Status', STATUS_LABEL[statusAt(c, now)]],
      ['Scopes', f ? (f.scope ?? '—') : later],
      ['Token type', f ? (f.token_type ?? '—') : later],
      ['Access token expires', this.expiry(c.access_expires, now)],
      [
        'Refresh token expires',
        c.provider === 'fedex'
          ? 'No refresh token (FedEx): refresh requests a new token'
          : this.expiry(c.refresh_expires, now),
      ],
      ['Last refresh', f ? formatInstant(f.last_refresh_at) : later],
      ['Last error', c.last_error != null ? `${errorLine(c.last_error)} (${formatInstant(c.last_error.at)})` : '—'],
      ['Connected', f ? formatInstant(f.created_at) : later],
    ];
    if (c.provider === 'fedex') {
      const onChanged = (conn: Connection) => {
        if (this.current?.id !== conn.id) return;
        this.full = conn;
        this.current = conn;
        this.render();
      };
      rows.splice(5, 0, [t('keepFresh.label'), f ? keepFreshSwitch(f, onChanged) : later]);
    }
    // FlowAccount grants slide: Authdeck keeps them alive while it runs; closed, they lapse.
    if (c.provider === 'flowaccount' && c.refresh_expires != null) {
      rows.splice(
        rows.findIndex(([k]) => k === 'Last refresh'),
        0,
        ['Lapses if Authdeck stays closed', this.expiry(c.refresh_expires, now)],
      );
    }
    if (c.support_code != null) rows.splice(2, 0, ['supportCode', c.support_code]);
    if (f?.user_id != null) rows.splice(2, 0, ['User id', f.user_id]);

    const dl = h('dl', { class: 'kv' });
    for (const [k, v] of rows) dl.append(h('dt', {}, k), h('dd', {}, v));

    const sections: Node[] = [h('h2', { class: 'details-title' }, c.label), dl];
    if (f?.userinfo != null) sections.push(h('h3', {}, 'userinfo'), json(f.userinfo));
    if (f?.jwt != null) {
      sections.push(h('h3', {}, 'JWT header (decoded, not verified)'), json(f.jwt.header));
      sections.push(h('h3', {}, 'JWT claims'), json(f.jwt.claims));
    }
    sections.push(h('h3', {}, 'History'), this.historyNode());
    replaceChildren(this.content, ...sections);
  }

  private expiry(e: Expiry | null | undefined, now: number): Node | string {
    if (e == null) return 'unknown';
    const cd = new CountdownText(parseInstant(e.at), now);
    this.countdowns.push({ c: cd });
    return h(
      'span',
      {},
      h('span', { class: 'countdown' }, cd.node),
      ` — ${formatInstant(e.at)}, from ${SOURCE_LABEL[e.source]}`,
    );
  }

  private historyNode(): Node {
    if (this.historyError) return h('p', { class: 'error-text' }, this.historyError);
    if (this.history === null) return h('p', { class: 'muted' }, 'Loading…');
    if (this.history.length === 0) return h('p', { class: 'muted' }, 'No history yet.');
    const list = h('ol', { class: 'history' });
    for (const e of this.history) {
      list.append(
        h(
          'li',
          { class: e.outcome === 'ok' ? 'ok' : 'failed' },
          h('time', { datetime: e.at }, formatInstant(e.at)),
          ' ',
          h('strong', {}, e.event),
          ' ',
          h('span', { class: 'outcome' }, e.outcome),
          e.detail != null ? h('span', { class: 'muted' }, ` — ${e.detail}`) : null,
        ),
      );
    }
    return list;
  }
}
