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
import { type PlainKey, t } from '../i18n/index';
import { parseInstant, statusAt, statusInputs, statusLabel } from '../status';
import { identityBlock, titleOf } from './identity';
import { keepFreshSwitch } from './keep-fresh';
import { GROUP_TITLE, subtitle } from './list';
import { ENV_EXPLAIN, ENV_LABEL } from './row';

export const SOURCE_LABEL: Record<ExpirySource, PlainKey> = {
  relative_seconds: 'source.relative_seconds',
  epoch_seconds: 'source.epoch_seconds',
  epoch_millis: 'source.epoch_millis',
  jwt_exp: 'source.jwt_exp',
  estimated: 'source.estimated',
};

function kv(rows: [string, Node | string][]): HTMLElement {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of rows) dl.append(h('dt', {}, k), h('dd', {}, v));
  return dl;
}

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
  /** The "Technical details" disclosure stays as the person left it. */
  private technicalOpen = false;
  private readonly unsubscribe: () => void;

  constructor(ticker: Ticker) {
    this.content = h('div', { class: 'details-content' });
    this.el = h(
      'aside',
      { class: 'details', 'data-testid': 'details-panel', 'aria-label': t('details.label'), tabindex: -1 },
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
      replaceChildren(this.content, h('p', { class: 'muted' }, t('details.hint')));
      return;
    }
    // Until the details arrive, what only the full connection has reads "…".
    const f = this.full;
    const later = '…';
    const now = Date.now();
    const absent = t('time.absent');
    const rows: [string, Node | string][] = [
      [t('details.provider'), t(GROUP_TITLE[c.provider])],
      [t('details.account'), subtitle(c)],
      [t('details.client'), t('details.clientValue', { name: c.client_name, env: t(ENV_LABEL[c.environment]) })],
      [t('details.status'), statusLabel(statusAt(c, now), statusInputs(c), now)],
      [t('details.accessExpires'), this.expiry(c.access_expires, now)],
      [
        t('details.refreshExpires'),
        c.provider === 'fedex' ? t('details.fedexNoRefresh') : this.expiry(c.refresh_expires, now),
      ],
      [t('details.lastRefresh'), f ? formatInstant(f.last_refresh_at) : later],
      [
        t('details.lastError'),
        c.last_error != null
          ? t('details.lastErrorValue', {
              error: errorLine(c.last_error, { provider: c.provider, child: c.child_key != null }),
              at: formatInstant(c.last_error.at),
            })
          : absent,
      ],
      [t('details.connected'), f ? formatInstant(f.created_at) : later],
    ];
    if (c.provider === 'fedex') {
      const onChanged = (conn: Connection) => {
        if (this.current?.id !== conn.id) return;
        this.full = conn;
        this.current = conn;
        this.render();
      };
      rows.splice(4, 0, [t('details.keepFresh'), f ? keepFreshSwitch(f, onChanged) : later]);
    }
    // FlowAccount grants slide: Authdeck keeps them alive while it runs; closed, they lapse.
    if (c.provider === 'flowaccount' && c.refresh_expires != null) {
      const at = rows.findIndex(([k]) => k === t('details.lastRefresh'));
      rows.splice(at, 0, [t('details.lapses'), this.expiry(c.refresh_expires, now)]);
    }
    if (c.support_code != null) rows.splice(2, 0, [t('details.customerCode'), c.support_code]);
    if (f?.user_id != null) rows.splice(2, 0, [t('details.userId'), f.user_id]);

    // What a badge means, in words (not only in its title).
    const env = h('p', { class: 'hint', 'data-testid': 'env-explain' }, t(ENV_EXPLAIN[c.environment]));

    // Protocol details: for support staff, folded away.
    const tech: [string, Node | string][] = [
      [t('details.scopes'), f ? (f.scope ?? absent) : later],
      [t('details.tokenType'), f ? (f.token_type ?? absent) : later],
    ];
    const sources: Node[] = [];
    if (c.access_expires != null) {
      sources.push(
        h(
          'div',
          {},
          t('details.expirySource', { which: t('row.access'), source: t(SOURCE_LABEL[c.access_expires.source]) }),
        ),
      );
    }
    if (c.refresh_expires != null) {
      sources.push(
        h(
          'div',
          {},
          t('details.expirySource', {
            which: t('row.refreshToken'),
            source: t(SOURCE_LABEL[c.refresh_expires.source]),
          }),
        ),
      );
    }
    if (sources.length) {
      const box = h('div', {}, ...sources);
      tech.push([t('details.expirySources'), box]);
    }
    const technical: Node[] = [kv(tech)];
    if (f?.userinfo != null) technical.push(h('h3', {}, t('details.userinfo')), json(f.userinfo));
    if (f?.jwt != null) {
      technical.push(h('h3', {}, t('details.jwtHeader')), json(f.jwt.header));
      technical.push(h('h3', {}, t('details.jwtClaims')), json(f.jwt.claims));
    }
    const disclosure = h(
      'details',
      { class: 'technical', 'data-testid': 'technical-details' },
      h('summary', {}, t('details.technical')),
      ...technical,
    );
    if (this.technicalOpen) disclosure.open = true;
    disclosure.addEventListener('toggle', () => {
      this.technicalOpen = disclosure.open;
    });

    const sections: Node[] = [
      h('h2', { class: 'details-title' }, titleOf(c)),
      identityBlock(c, () => void this.reload()),
      kv(rows),
      env,
      disclosure,
    ];
    sections.push(h('h3', {}, t('details.history')), this.historyNode());
    replaceChildren(this.content, ...sections);
  }

  private expiry(e: Expiry | null | undefined, now: number): Node | string {
    if (e == null) return t('common.unknown');
    const cd = new CountdownText(parseInstant(e.at), now);
    this.countdowns.push({ c: cd });
    return h('span', {}, h('span', { class: 'countdown' }, cd.node), t('details.expiry', { at: formatInstant(e.at) }));
  }

  private historyNode(): Node {
    if (this.historyError) return h('p', { class: 'error-text' }, this.historyError);
    if (this.history === null) return h('p', { class: 'muted' }, t('common.loading'));
    if (this.history.length === 0) return h('p', { class: 'muted' }, t('details.history.none'));
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
