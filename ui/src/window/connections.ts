// The Connections view: the filter box, the empty state, the virtualised list and the
// details panel beside it. The list selects, the panel shows the selected connection.

import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Ticker } from '../countdown';
import { h } from '../dom';
import { t } from '../i18n/index';
import { DetailsPanel } from '../views/details';
import { DevicesPanel } from '../views/devices';
import { ConnectionList, type RowActions } from '../views/list';
import { exportButtons } from './export';
import type { ListEdits } from './row-actions';

export interface ConnectionsViewOptions {
  ticker: Ticker;
  /** The row buttons' commands, given how to change the list they act on. */
  actions: (list: ListEdits) => RowActions;
  /** The list's sandbox content changed: whether any connection is a sandbox one. */
  onSandboxData: (has: boolean) => void;
  /** The empty state's "Add a client". */
  onAddClient: () => void;
  /** The empty state's "Try the sandbox" (and a row error's "Start the sandbox"). */
  onStartSandbox: () => void;
}

export class ConnectionsView {
  readonly el: HTMLElement;
  readonly list: ConnectionList;
  readonly details: DetailsPanel;
  readonly devices: DevicesPanel;

  constructor(opts: ConnectionsViewOptions) {
    const scroll = h('div', { class: 'list-scroll' });
    const details = new DetailsPanel(opts.ticker);
    const list: ConnectionList = new ConnectionList({
      ticker: opts.ticker,
      actions: opts.actions({
        upsert: (c) => list.upsert(c),
        remove: (id, focusNext) => list.remove(id, focusNext),
      }),
      scrollRoot: scroll,
      onSelect: (c) => details.show(c),
      onAdvice: (action) => (action === 'sandbox' ? opts.onStartSandbox() : opts.onAddClient()),
      onSelectedChange: (c) => details.show(c),
      onCountChange: (n) => {
        if (empty.hidden !== n > 0) empty.hidden = n > 0;
        if (list.el.hidden !== (n === 0)) list.el.hidden = n === 0;
        if (toolbar.hidden !== (n === 0)) toolbar.hidden = n === 0;
        opts.onSandboxData(list.hasSandbox());
      },
    });
    const emptyAdd = h('button', { type: 'button', class: 'btn btn-primary' }, t('empty.addClient'));
    const emptySandbox = h(
      'button',
      { type: 'button', class: 'btn', 'data-testid': 'sandbox-start' },
      t('sandbox.try'),
    );
    const empty = h(
      'div',
      { class: 'empty', 'data-testid': 'empty-state' },
      h('h2', {}, t('empty.title')),
      h('p', {}, t('empty.text')),
      h('div', { class: 'inline-actions' }, emptyAdd, emptySandbox),
    );
    empty.hidden = true;
    emptyAdd.addEventListener('click', () => opts.onAddClient());
    emptySandbox.addEventListener('click', () => opts.onStartSandbox());
    const noMatches = h('p', { class: 'muted no-matches', 'data-testid': 'no-matches', role: 'status' });
    noMatches.hidden = true;
    const toolbar = h('div', { class: 'list-toolbar' }, filterBox(list, noMatches), exportButtons());
    // IoT devices below the list, under its IoT accounts.
    const devices = new DevicesPanel();
    // Loaded once the first list is on screen (no IPC before the first frame).
    scroll.append(toolbar, noMatches, empty, list.el, devices.el);

    this.el = h('div', { class: 'connections-view' }, scroll, details.el);
    this.list = list;
    this.details = details;
    this.devices = devices;
  }

  /** Show a connection just made: in the list, highlighted. */
  showConnected(conn: ConnectionSummary): void {
    this.list.upsert(conn);
    this.list.highlight(conn.id);
  }

  dispose(): void {
    this.list.dispose();
    this.details.dispose();
  }
}

/** The filter box: filters as you type; Escape clears it; nothing found says "no matches". */
function filterBox(list: ConnectionList, noMatches: HTMLElement): HTMLInputElement {
  const filter = h('input', {
    type: 'search',
    class: 'filter',
    placeholder: t('list.filter.placeholder'),
    'aria-label': t('list.filter.label'),
    'data-testid': 'list-filter',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const apply = () => {
    list.filter(filter.value);
    const none = filter.value.trim() !== '' && list.shownCount === 0;
    noMatches.textContent = none ? t('list.noMatches', { query: filter.value.trim() }) : '';
    noMatches.hidden = !none;
  };
  filter.addEventListener('input', apply);
  filter.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && filter.value) {
      e.preventDefault();
      filter.value = '';
      apply();
    }
  });
  return filter;
}
