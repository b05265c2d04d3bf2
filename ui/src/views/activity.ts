// The activity view: every history event across connections in plain words — connects,
// refreshes, failures, rejected redirects, logouts, removed connections — newest first,
// filterable by connection and by kind. Events of a removed connection stay, under its
// name (the shell keeps connection names for history: `activity` command).

import { api, toCommandError } from '../api';
import type { ActivityEntry } from '../bindings/ActivityEntry';
import type { ErrorCode } from '../bindings/ErrorCode';
import { formatInstant, h, replaceChildren, uid } from '../dom';
import { ERROR_ADVICE, errorLine } from '../errors';
import { type MessageKey, type PlainKey, t } from '../i18n/index';

/** The kinds the filter offers. */
export type ActivityKind = 'all' | 'connect' | 'refresh' | 'failure' | 'rejected' | 'removal';

const KIND_LABEL: Record<ActivityKind, PlainKey> = {
  all: 'activity.kind.all',
  connect: 'activity.kind.connect',
  refresh: 'activity.kind.refresh',
  failure: 'activity.kind.failure',
  rejected: 'activity.kind.rejected',
  removal: 'activity.kind.removal',
};

const REMOVALS = new Set(['logout', 'disconnect', 'leave_sandbox']);

/** Whether `e` is of `kind`. */
export function isKind(e: ActivityEntry, kind: ActivityKind): boolean {
  switch (kind) {
    case 'all':
      return true;
    case 'connect':
      return e.event === 'connect' || e.event === 'reconnect';
    case 'refresh':
      return e.event === 'refresh';
    case 'failure':
      return e.outcome !== 'ok';
    case 'rejected':
      return e.event === 'callback_rejected';
    case 'removal':
      return REMOVALS.has(e.event) && e.outcome === 'ok';
  }
}

const OK_SENTENCE: Record<string, MessageKey> = {
  connect: 'activity.ok.connect',
  reconnect: 'activity.ok.reconnect',
  refresh: 'activity.ok.refresh',
  logout: 'activity.ok.logout',
  disconnect: 'activity.ok.disconnect',
  leave_sandbox: 'activity.ok.leave_sandbox',
};

const FAILED_SENTENCE: Record<string, MessageKey> = {
  connect: 'activity.failed.connect',
  reconnect: 'activity.failed.reconnect',
  refresh: 'activity.failed.refresh',
  logout: 'activity.failed.logout',
  disconnect: 'activity.failed.disconnect',
  leave_sandbox: 'activity.failed.leave_sandbox',
};

function isErrorCode(code: string): code is ErrorCode {
  return code in ERROR_ADVICE;
}

/** The event in plain words, in the window's language. */
export function describeActivity(e: ActivityEntry): string {
  const name = e.connection_label ?? t('activity.noConnection');
  if (e.event === 'callback_rejected') return `${t('activity.rejected')} ${why(e)}`;
  if (e.outcome === 'ok') {
    const key = OK_SENTENCE[e.event];
    return key ? t(key as 'activity.ok.connect', { name }) : t('activity.ok.other', { event: e.event, name });
  }
  const key = FAILED_SENTENCE[e.event];
  const what = key
    ? t(key as 'activity.failed.connect', { name })
    : t('activity.failed.other', { event: e.event, name });
  return `${what} ${why(e)}`;
}

/** Why an event failed: its recorded message and the next step (or the bare outcome). */
function why(e: ActivityEntry): string {
  if (!isErrorCode(e.outcome)) return e.outcome;
  if (e.detail == null || e.detail.trim() === '') return t(ERROR_ADVICE[e.outcome].next);
  return errorLine({ code: e.outcome, message: e.detail });
}

/** The connection filter's value for events of no connection. */
const NO_CONNECTION = '-';

export class ActivityView {
  readonly el: HTMLElement;
  private readonly listEl: HTMLElement;
  private readonly status: HTMLElement;
  private readonly connectionSelect: HTMLSelectElement;
  private readonly kindSelect: HTMLSelectElement;
  private entries: ActivityEntry[] | null = null;
  private error: string | null = null;
  private loadSeq = 0;

  constructor() {
    const titleId = uid('activity-title');
    const connId = uid('activity-conn');
    const kindId = uid('activity-kind');
    this.connectionSelect = h('select', { id: connId, 'data-testid': 'activity-filter-connection' });
    this.kindSelect = h('select', { id: kindId, 'data-testid': 'activity-filter-kind' });
    for (const kind of Object.keys(KIND_LABEL) as ActivityKind[]) {
      this.kindSelect.append(h('option', { value: kind }, t(KIND_LABEL[kind])));
    }
    this.status = h('p', { class: 'muted', role: 'status' });
    this.listEl = h('ol', { class: 'activity-list', 'data-testid': 'activity-list', 'aria-labelledby': titleId });
    this.el = h(
      'section',
      { class: 'activity-view', 'data-testid': 'activity-view', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, t('activity.title')),
      h('p', { class: 'muted' }, t('activity.intro')),
      h(
        'div',
        { class: 'activity-filters' },
        h('label', { for: connId }, t('activity.filter.connection')),
        this.connectionSelect,
        h('label', { for: kindId }, t('activity.filter.kind')),
        this.kindSelect,
      ),
      this.status,
      this.listEl,
    );
    this.connectionSelect.addEventListener('change', () => this.render());
    this.kindSelect.addEventListener('change', () => this.render());
    this.render();
  }

  /** Fetch the events again (the view is shown, or history was added while it shows). */
  async reload(): Promise<void> {
    const seq = ++this.loadSeq;
    try {
      const entries = await api.activity();
      if (seq !== this.loadSeq) return;
      this.entries = entries;
      this.error = null;
    } catch (e) {
      if (seq !== this.loadSeq) return;
      this.error = errorLine(toCommandError(e));
    }
    this.render();
  }

  /** History changed: reload if the view is on screen. */
  changed(): void {
    if (!this.el.hidden) void this.reload();
  }

  private fillConnections(entries: ActivityEntry[]): void {
    const chosen = this.connectionSelect.value;
    const seen = new Map<string, string>();
    let orphan = false;
    for (const e of entries) {
      if (e.connection_id == null) orphan = true;
      else if (!seen.has(e.connection_id)) {
        const name = e.connection_label ?? e.connection_id;
        seen.set(e.connection_id, e.removed ? t('activity.removedName', { name }) : name);
      }
    }
    const options = [h('option', { value: '' }, t('activity.filter.allConnections'))];
    for (const [id, name] of [...seen].sort((a, b) => a[1].localeCompare(b[1]))) {
      options.push(h('option', { value: id }, name));
    }
    if (orphan) options.push(h('option', { value: NO_CONNECTION }, t('activity.noConnection')));
    replaceChildren(this.connectionSelect, ...options);
    this.connectionSelect.value = [...this.connectionSelect.options].some((o) => o.value === chosen) ? chosen : '';
  }

  private render(): void {
    if (this.error) {
      this.status.textContent = this.error;
      replaceChildren(this.listEl);
      return;
    }
    if (this.entries === null) {
      this.status.textContent = t('common.loading');
      replaceChildren(this.listEl);
      return;
    }
    this.fillConnections(this.entries);
    const conn = this.connectionSelect.value;
    const kind = this.kindSelect.value as ActivityKind;
    const shown = this.entries.filter(
      (e) =>
        isKind(e, kind) &&
        (conn === '' || (conn === NO_CONNECTION ? e.connection_id == null : e.connection_id === conn)),
    );
    this.status.textContent =
      this.entries.length === 0
        ? t('activity.none')
        : shown.length === 0
          ? t('activity.noMatches')
          : t('activity.count', { shown: shown.length, total: this.entries.length });
    replaceChildren(
      this.listEl,
      ...shown.map((e) =>
        h(
          'li',
          {
            class: e.outcome === 'ok' ? 'ok' : 'failed',
            'data-testid': 'activity-entry',
            'data-event': e.event,
            'data-connection-id': e.connection_id ?? '',
          },
          h('time', { datetime: e.at }, formatInstant(e.at)),
          ' ',
          h('span', { class: 'activity-text' }, describeActivity(e)),
          e.count > 1 ? h('span', { class: 'muted' }, ` ${t('details.history.count', { n: e.count })}`) : null,
          e.removed ? h('span', { class: 'badge' }, t('activity.removedBadge')) : null,
          e.detail != null && e.outcome === 'ok'
            ? h('span', { class: 'muted activity-detail' }, ` — ${e.detail}`)
            : null,
        ),
      ),
    );
  }
}
