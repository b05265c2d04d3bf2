// The connections list, virtualised: every connection is data (an Entry, keyed by id,
// sorted within its provider group); only the rows in view, plus a few on either side,
// exist in the DOM. Row elements are recycled as the list scrolls, and a row's text is
// written only where it differs. The shared Ticker updates the countdowns of the rows
// in view only, so a tick costs O(rows on screen) whatever the list's length.
//
// Geometry: group headers and rows have fixed heights, measured once from real elements
// (and again when the window's width changes, since the row layout follows it); a row
// showing an error line is taller. Items are positioned absolutely inside a container
// as tall as the whole list, so the scrollbar is the list's.

import { toCommandError } from '../api';
import type { CommandError } from '../bindings/CommandError';
import type { ConnectionSummary } from '../bindings/ConnectionSummary';
import type { Provider } from '../bindings/Provider';
import type { Ticker } from '../countdown';
import { h, setText } from '../dom';
import type { ErrorAction } from '../errors';
import { t } from '../i18n/index';
import { statusInputs, statusLabel } from '../status';
import { identitySearchText, titleOf } from './identity';
import { type Entry, GroupView, type RowAction, RowView, entryError, subtitle } from './row';

export { GROUP_TITLE, type RowAction, subtitle } from './row';

/** What the row buttons do; a rejection (a CommandError) is shown on the row. */
export type RowActions = Record<Exclude<RowAction, 'advice'>, (conn: ConnectionSummary) => Promise<unknown>>;

/** Heights in px of the list's items. */
export interface ItemHeights {
  group: number;
  row: number;
  /** A row showing its error line. */
  rowWithError: number;
}

/** Used until the real elements can be measured (and in tests, which have no layout). */
export const FALLBACK_HEIGHTS: ItemHeights = { group: 40, row: 60, rowWithError: 90 };

export interface ListOptions {
  ticker: Ticker;
  actions: RowActions;
  /** The selection changed (null: nothing selected). */
  onSelect: (conn: ConnectionSummary | null) => void;
  /** The selected connection's data changed. */
  onSelectedChange?: (conn: ConnectionSummary) => void;
  onCountChange?: (count: number) => void;
  /** A row error's button ("Open Clients & settings", "Start the sandbox"). */
  onAdvice?: (action: ErrorAction, conn: ConnectionSummary) => void;
  /** The scrolling element the list is in (defaults to the list itself). */
  scrollRoot?: HTMLElement;
  /**
   * Pixels rendered beyond each edge of the view, from the first tick or scroll on: the
   * first frame holds only the rows in view (each row costs its layout and paint).
   */
  overscan?: number;
  now?: () => number;
}

export const PROVIDER_ORDER: readonly Provider[] = ['flowaccount', 'fedex', 'iot'];

interface Item {
  /** `group:<provider>` or a connection id. */
  key: string;
  /** Position among the shown items (aria-rowindex - 1). */
  index: number;
  /** First / last row of its group (rounded corners). */
  first: boolean;
  last: boolean;
  top: number;
  height: number;
  provider: Provider;
  entry: Entry | null;
}

const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
function compareConns(a: ConnectionSummary, b: ConnectionSummary): number {
  return collator.compare(titleOf(a), titleOf(b)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class ConnectionList {
  readonly el: HTMLElement;
  private readonly entries = new Map<string, Entry>();
  /** Each group's entries, sorted as displayed. */
  private readonly groups: Record<Provider, Entry[]>;
  private readonly groupViews: Record<Provider, GroupView>;
  /** The shown items (filtered), in display order, with their offsets. */
  private items: Item[] = [];
  private readonly itemIndex = new Map<string, number>();
  private totalHeight = 0;
  /** Items in the DOM, by key. */
  private readonly rendered = new Map<string, RowView | GroupView>();
  private readonly pool: Record<Provider, RowView[]> = { flowaccount: [], fedex: [], iot: [] };
  private heights: ItemHeights = FALLBACK_HEIGHTS;
  private measured = false;
  /** Some row shows who connected it (team mode): measured with that line. */
  private teamRows = false;
  private measuredWidth = -1;
  private readonly scrollRoot: HTMLElement;
  private readonly overscanPx: number;
  private overscan = 0;
  private readonly unsubscribe: () => void;
  private readonly onScroll = (): void => {
    this.overscan = this.overscanPx;
    this.render();
  };
  private readonly onResize = (): void => {
    if (this.scrollRoot.clientWidth !== this.measuredWidth) this.measured = false;
    this.render();
  };
  private readonly now: () => number;
  private selectedId: string | null = null;
  private query = '';

  constructor(private readonly opts: ListOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.overscanPx = opts.overscan ?? 240;
    this.el = h('div', {
      class: 'conn-list',
      role: 'grid',
      'aria-label': t('list.label'),
      'aria-rowcount': 0,
      'data-testid': 'connection-list',
    });
    this.groups = { flowaccount: [], fedex: [], iot: [] };
    this.groupViews = {
      flowaccount: new GroupView('flowaccount'),
      fedex: new GroupView('fedex'),
      iot: new GroupView('iot'),
    };
    this.scrollRoot = opts.scrollRoot ?? this.el;
    this.scrollRoot.addEventListener('scroll', this.onScroll, { passive: true });
    if (typeof window !== 'undefined') window.addEventListener('resize', this.onResize);
    this.el.addEventListener('click', (e) => this.onClick(e));
    this.el.addEventListener('keydown', (e) => this.onKeyDown(e));
    this.unsubscribe = opts.ticker.subscribe((now) => this.tick(now));
  }

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Whether any connection shown is the built-in sandbox's. */
  hasSandbox(): boolean {
    for (const e of this.entries.values()) if (e.conn.sandbox) return true;
    return false;
  }

  get(id: string): ConnectionSummary | undefined {
    return this.entries.get(id)?.conn;
  }

  /** The row element of a connection, if it is in the DOM (tests, highlight). */
  rowElement(id: string): HTMLElement | undefined {
    const v = this.rendered.get(id);
    return v instanceof RowView ? v.el : undefined;
  }

  /** How many rows are in the DOM (tests: the list stays small at any length). */
  get renderedRowCount(): number {
    let n = 0;
    for (const v of this.rendered.values()) if (v instanceof RowView) n += 1;
    return n;
  }

  /**
   * Show exactly `conns` (a snapshot): known connections are updated in place, new
   * ones added, the others removed.
   */
  setAll(conns: readonly ConnectionSummary[]): void {
    const keep = new Set<string>();
    for (const c of conns) {
      keep.add(c.id);
      const e = this.entries.get(c.id);
      if (!e) this.entries.set(c.id, this.newEntry(c));
      else if (e.conn !== c && Date.parse(c.updated_at) >= Date.parse(e.conn.updated_at)) {
        this.updateEntry(e, c);
        this.rebind(e);
      }
    }
    for (const id of [...this.entries.keys()]) if (!keep.has(id)) this.entries.delete(id);
    for (const p of PROVIDER_ORDER) this.groups[p] = [];
    for (const e of this.entries.values()) this.groups[e.conn.provider].push(e);
    for (const p of PROVIDER_ORDER) this.groups[p].sort((a, b) => compareConns(a.conn, b.conn));
    if (this.selectedId !== null && !this.entries.has(this.selectedId)) {
      this.selectedId = null;
      this.opts.onSelect(null);
    }
    this.relayout();
  }

  /** Insert a new connection or update a shown one (its row keeps its DOM node). */
  upsert(conn: ConnectionSummary): void {
    const e = this.entries.get(conn.id);
    if (!e) {
      const fresh = this.newEntry(conn);
      this.entries.set(conn.id, fresh);
      this.place(fresh);
      this.relayout();
      return;
    }
    const old = e.conn;
    // An event older than what we show (e.g. buffered during the first load) is ignored.
    if (Date.parse(conn.updated_at) < Date.parse(old.updated_at)) return;
    const hadError = entryError(e) !== null;
    const matched = this.matches(e);
    this.updateEntry(e, conn);
    this.rebind(e);
    if (old.provider !== conn.provider || compareConns(old, conn) !== 0) {
      this.unplace(e, old.provider);
      this.place(e);
      this.relayout();
    } else if (hadError !== (entryError(e) !== null) || matched !== this.matches(e)) {
      this.relayout();
    }
    if (this.selectedId === conn.id) this.opts.onSelectedChange?.(conn);
  }

  /**
   * Remove a connection. `focusNext`: the row was acted on by the keyboard's user (a
   * disconnect): the next row (else the previous one) is selected and focused, not the
   * top of the window.
   */
  remove(id: string, focusNext = false): void {
    const e = this.entries.get(id);
    if (!e) return;
    let next: string | null = null;
    if (focusNext) {
      const rows = this.items.filter((it) => it.entry !== null);
      const i = rows.findIndex((it) => it.key === id);
      next = rows[i + 1]?.key ?? rows[i - 1]?.key ?? null;
    }
    this.entries.delete(id);
    this.unplace(e, e.conn.provider);
    if (this.selectedId === id) {
      this.selectedId = null;
      this.opts.onSelect(null);
    }
    this.relayout();
    if (next !== null) this.select(next, true);
  }

  /** Show an error on a row (e.g. a reconnect that failed outside the row's buttons). */
  setRowError(id: string, err: CommandError | null): void {
    const e = this.entries.get(id);
    if (!e) return;
    const had = entryError(e) !== null;
    e.actionError = err;
    this.rebind(e);
    if (had !== (entryError(e) !== null)) this.relayout();
  }

  select(id: string | null, focus = false): void {
    const next = id !== null && this.entries.has(id) && this.itemIndex.has(id) ? id : null;
    const changed = next !== this.selectedId;
    this.selectedId = next;
    if (next !== null && focus) this.scrollIntoView(next);
    this.render(); // aria-selected, tab stop, and the row in the DOM
    if (next !== null && focus) this.rowElement(next)?.focus();
    if (changed) this.opts.onSelect(next !== null ? this.entries.get(next)!.conn : null);
  }

  get selected(): string | null {
    return this.selectedId;
  }

  /** Show only rows whose label, names (own, company), account, client or environment contains `query`. */
  filter(query: string): void {
    this.query = query.trim().toLowerCase();
    this.relayout();
  }

  /** Rows shown (after the filter). */
  get shownCount(): number {
    return this.items.reduce((n, it) => n + (it.entry ? 1 : 0), 0);
  }

  /** Select, scroll to and briefly mark a row (a connection that just arrived). */
  highlight(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.flashUntil = Date.now() + 2500;
    this.select(id);
    this.scrollIntoView(id);
    this.render();
    this.rowElement(id)?.classList.add('flash');
    setTimeout(() => {
      const el = this.rowElement(id);
      if (el && e.flashUntil <= Date.now()) el.classList.remove('flash');
    }, 2500);
  }

  dispose(): void {
    this.unsubscribe();
    this.scrollRoot.removeEventListener('scroll', this.onScroll);
    if (typeof window !== 'undefined') window.removeEventListener('resize', this.onResize);
  }

  // ---- data ------------------------------------------------------------------------

  /** A row with a team line: measure the rows again with it. */
  private noteTeam(conn: ConnectionSummary): void {
    if (!this.teamRows && conn.connected_by != null) {
      this.teamRows = true;
      this.measured = false;
    }
  }

  private newEntry(conn: ConnectionSummary): Entry {
    this.noteTeam(conn);
    const e: Entry = {
      id: conn.id,
      conn,
      inputs: statusInputs(conn),
      search: '',
      actionError: null,
      busy: null,
      flashUntil: 0,
    };
    e.search = searchText(conn);
    return e;
  }

  private updateEntry(e: Entry, conn: ConnectionSummary): void {
    this.noteTeam(conn);
    e.conn = conn;
    e.inputs = statusInputs(conn);
    e.search = searchText(conn);
  }

  private matches(e: Entry): boolean {
    return this.query === '' || e.search.includes(this.query);
  }

  private place(e: Entry): void {
    const rows = this.groups[e.conn.provider];
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareConns(rows[mid]!.conn, e.conn) < 0) lo = mid + 1;
      else hi = mid;
    }
    rows.splice(lo, 0, e);
  }

  private unplace(e: Entry, provider: Provider): void {
    const rows = this.groups[provider];
    const i = rows.indexOf(e);
    if (i >= 0) rows.splice(i, 1);
  }

  // ---- geometry ----------------------------------------------------------------------

  /** Recompute the shown items and their offsets (membership, order, filter or heights changed). */
  private relayout(): void {
    const hs = this.heights;
    const items: Item[] = [];
    this.itemIndex.clear();
    let top = 0;
    for (const p of PROVIDER_ORDER) {
      const rows = this.groups[p];
      const shown = this.query === '' ? rows : rows.filter((e) => this.matches(e));
      const gv = this.groupViews[p];
      setText(
        gv.count,
        shown.length === rows.length
          ? String(shown.length)
          : t('list.count.filtered', { shown: shown.length, total: rows.length }),
      );
      if (shown.length === 0) continue;
      items.push({
        key: `group:${p}`,
        index: items.length,
        first: false,
        last: false,
        top,
        height: hs.group,
        provider: p,
        entry: null,
      });
      top += hs.group;
      shown.forEach((e, i) => {
        const height = entryError(e) !== null ? hs.rowWithError : hs.row;
        this.itemIndex.set(e.id, items.length);
        const last = i === shown.length - 1;
        items.push({ key: e.id, index: items.length, first: i === 0, last, top, height, provider: p, entry: e });
        top += height;
      });
    }
    this.items = items;
    if (top !== this.totalHeight) {
      this.totalHeight = top;
      this.el.style.height = `${top}px`;
    }
    this.el.setAttribute('aria-rowcount', String(items.length));
    this.opts.onCountChange?.(this.entries.size);
    this.render();
  }

  /** Measure a group header and a row (with and without its error line) once laid out. */
  private measure(): void {
    if (!this.el.isConnected || this.el.offsetParent === null) return;
    const probe = new RowView('flowaccount', this.now());
    const group = new GroupView('flowaccount');
    const box = h('div', { class: 'list-probe', 'aria-hidden': 'true' }, group.el, probe.el);
    probe.buttons.reconnect.hidden = false;
    // Probe texts as long as real ones get, in the window's language (Thai lines are taller).
    setText(probe.label, t('group.flowaccount'));
    setText(probe.sub, t('row.customerCode', { code: 'FA-100000' }));
    setText(probe.client, t('group.flowaccount'));
    if (this.teamRows) {
      probe.team.hidden = false;
      setText(probe.team, t('row.team.connected', { member: 'member', machine: 'machine' }));
    }
    setText(probe.env, t('env.production'));
    setText(probe.chip, statusLabel('reauthorization_required'));
    this.el.appendChild(box);
    const row = probe.el.offsetHeight;
    const groupH = group.el.offsetHeight;
    probe.error.hidden = false;
    probe.errorCell.hidden = false;
    probe.el.classList.add('has-error');
    // As tall as the longest error line gets (two lines, clamped).
    setText(probe.error, t('error.line', { message: t('empty.text'), next: t('error.reauthorization_required') }));
    const rowWithError = probe.el.offsetHeight;
    box.remove();
    if (row > 0 && groupH > 0 && rowWithError >= row) {
      this.heights = { group: groupH, row, rowWithError };
      this.measured = true;
      this.measuredWidth = this.scrollRoot.clientWidth;
      this.el.style.setProperty('--list-row-h', `${row}px`);
      this.el.style.setProperty('--list-row-error-h', `${rowWithError}px`);
      this.el.style.setProperty('--list-group-h', `${groupH}px`);
    }
  }

  /** The part of the list inside the scroll root's view, in list coordinates. */
  private viewport(): { top: number; bottom: number } {
    const root = this.scrollRoot;
    let offset = 0;
    if (root !== this.el) {
      // The scroll root is the list's offset parent (position: relative), else measure.
      const parent = this.el.offsetParent;
      offset =
        parent === root || parent === null
          ? this.el.offsetTop
          : this.el.getBoundingClientRect().top - root.getBoundingClientRect().top + root.scrollTop;
    }
    const height = root.clientHeight || (typeof window !== 'undefined' ? window.innerHeight : 800);
    const top = root.scrollTop - offset;
    return { top, bottom: top + height };
  }

  /** Index of the first item whose bottom is below `y`. */
  private firstItemBelow(y: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const it = this.items[mid]!;
      if (it.top + it.height <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Make the DOM hold exactly the items in view (plus overscan and pinned rows). */
  private render(): void {
    if (!this.measured && this.items.length > 0) {
      const before = this.heights;
      this.measure();
      if (this.heights !== before) {
        this.relayout(); // offsets with the real heights; renders
        return;
      }
    }
    const now = this.now();
    const { top, bottom } = this.viewport();
    const wanted = new Map<string, Item>();
    for (let i = this.firstItemBelow(top - this.overscan); i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it.top > bottom + this.overscan) break;
      wanted.set(it.key, it);
    }
    // Pinned: the tab stop (keyboard focus lives there) stays in the DOM when scrolled away.
    const stop = this.tabStopId();
    if (stop !== null && !wanted.has(stop)) wanted.set(stop, this.items[this.itemIndex.get(stop)!]!);

    for (const [key, view] of this.rendered) {
      if (wanted.has(key)) continue;
      // A row holding focus (a clicked button) stays until focus leaves it.
      if (
        view instanceof RowView &&
        view.el.contains(document.activeElement) &&
        view.entry &&
        this.itemIndex.has(view.entry.id)
      ) {
        wanted.set(key, this.items[this.itemIndex.get(view.entry.id)!]!);
        continue;
      }
      this.release(key, view);
    }
    // In display order, so the DOM order is the reading order.
    let prev: HTMLElement | null = null;
    for (const it of [...wanted.values()].sort((a, b) => a.index - b.index)) {
      const key = it.key;
      let view = this.rendered.get(key);
      if (it.entry) {
        let rv = view instanceof RowView && view.provider === it.provider ? view : undefined;
        if (!rv) {
          if (view) this.release(key, view);
          rv = this.pool[it.provider].pop() ?? new RowView(it.provider, now);
          this.rendered.set(key, rv);
        }
        if (rv.entry !== it.entry || !rv.el.isConnected) rv.bind(it.entry, now);
        else rv.tick(now); // it may have missed ticks outside the view
        rv.setSelected(it.key === this.selectedId);
        rv.setTabStop(it.key === stop);
        view = rv;
      } else {
        view = this.groupViews[it.provider];
        this.rendered.set(key, view);
      }
      this.position(view, it, prev);
      prev = view.el;
    }
  }

  /** Place an item's element at its offset, right after `prev` in the DOM. */
  private position(view: RowView | GroupView, it: Item, prev: HTMLElement | null): void {
    const rowIndex = String(it.index + 1);
    if (view.el.getAttribute('aria-rowindex') !== rowIndex) view.el.setAttribute('aria-rowindex', rowIndex);
    const top = `${it.top}px`;
    if (view.el.style.top !== top) view.el.style.top = top;
    if (view instanceof RowView) {
      view.el.classList.toggle('group-first', it.first);
      view.el.classList.toggle('group-last', it.last);
    }
    const expected = prev ? prev.nextSibling : this.el.firstChild;
    if (view.el.parentNode !== this.el || view.el !== expected) {
      this.el.insertBefore(view.el, expected);
    }
  }

  private release(key: string, view: RowView | GroupView): void {
    this.rendered.delete(key);
    view.el.remove();
    if (view instanceof RowView) {
      view.entry = null;
      delete view.el.dataset.connectionId;
      view.el.classList.remove('flash');
      this.pool[view.provider].push(view);
    }
  }

  /** Rebind a shown entry's row after its data changed (no geometry change). */
  private rebind(e: Entry): void {
    const v = this.rendered.get(e.id);
    if (v instanceof RowView && v.provider === e.conn.provider) v.bind(e, this.now());
  }

  /** Scroll so the row is in view (nearest edge), keeping clear of the sticky toolbar. */
  private scrollIntoView(id: string): void {
    const i = this.itemIndex.get(id);
    if (i === undefined) return;
    const it = this.items[i]!;
    const root = this.scrollRoot;
    const { top, bottom } = this.viewport();
    const inset = root === this.el ? 0 : Number.parseFloat(getComputedStyle(root).scrollPaddingTop) || 0;
    if (it.top < top + inset) root.scrollTop -= top + inset - it.top;
    else if (it.top + it.height > bottom) root.scrollTop += it.top + it.height - bottom;
  }

  // ---- ticking ---------------------------------------------------------------------

  /**
   * Countdowns of the rows in view only: the overscan rows catch up when they scroll
   * into view (render), and every text written repaints.
   */
  private tick(now: number): void {
    if (this.rendered.size === 0) return;
    if (this.overscan !== this.overscanPx) {
      this.overscan = this.overscanPx;
      this.render();
    }
    const { top, bottom } = this.viewport();
    for (const v of this.rendered.values()) {
      if (!(v instanceof RowView) || !v.entry) continue;
      const i = this.itemIndex.get(v.entry.id);
      const it = i !== undefined ? this.items[i] : undefined;
      if (it && it.top < bottom && it.top + it.height > top) v.tick(now);
    }
  }

  // ---- selection, keyboard, clicks ---------------------------------------------------

  /** The one row in the tab order: the selection, else the first shown row. */
  private tabStopId(): string | null {
    if (this.selectedId !== null && this.itemIndex.has(this.selectedId)) return this.selectedId;
    const first = this.items.find((it) => it.entry !== null);
    return first ? first.key : null;
  }

  private rowOf(target: EventTarget | null): RowView | undefined {
    const el = target instanceof Element ? target.closest('[data-testid="connection-row"]') : null;
    if (!el) return undefined;
    const id = (el as HTMLElement).dataset.connectionId;
    const v = id !== undefined ? this.rendered.get(id) : undefined;
    return v instanceof RowView && v.el === el ? v : undefined;
  }

  private onClick(e: MouseEvent): void {
    const row = this.rowOf(e.target);
    if (!row?.entry) return;
    const btn = e.target instanceof Element ? e.target.closest('button[data-action]') : null;
    if (btn instanceof HTMLButtonElement) {
      const action = btn.dataset.action as RowAction;
      // The error's own button: where it leads is the window's business, not a command.
      if (action === 'advice') {
        if (row.advice !== null) this.opts.onAdvice?.(row.advice, row.entry.conn);
      } else {
        void this.run(row.entry.id, action);
      }
      return;
    }
    this.select(row.entry.id);
  }

  private onKeyDown(e: KeyboardEvent): void {
    const row = this.rowOf(e.target);
    if (!row?.entry) return;
    const rows = () => this.items.filter((it) => it.entry !== null);
    const at = (list: Item[], i: number) => list[Math.max(0, Math.min(list.length - 1, i))];
    const page = () => Math.max(1, Math.floor((this.scrollRoot.clientHeight || 600) / this.heights.row) - 1);
    let target: Item | undefined;
    switch (e.key) {
      case 'ArrowDown':
      case 'ArrowUp':
      case 'PageDown':
      case 'PageUp': {
        const list = rows();
        const i = list.findIndex((it) => it.key === row.entry!.id);
        const step = e.key === 'ArrowDown' ? 1 : e.key === 'ArrowUp' ? -1 : e.key === 'PageDown' ? page() : -page();
        const j = i + step;
        target = e.key.startsWith('Arrow') ? list[j] : at(list, j);
        break;
      }
      case 'Home':
        target = rows()[0];
        break;
      case 'End': {
        const list = rows();
        target = list[list.length - 1];
        break;
      }
      case 'Enter':
      case ' ':
        if (e.target === row.el) {
          e.preventDefault();
          this.select(row.entry.id);
        }
        return;
      default:
        return;
    }
    e.preventDefault();
    if (target) this.select(target.key, true);
  }

  /** Run a row action with the button busy; failures stay on the row in plain words. */
  async run(id: string, action: Exclude<RowAction, 'advice'>): Promise<void> {
    const e = this.entries.get(id);
    if (!e || e.busy !== null) return;
    e.busy = action;
    this.rebind(e);
    const hadError = entryError(e) !== null;
    try {
      await this.opts.actions[action](e.conn);
      e.actionError = null;
    } catch (err) {
      e.actionError = toCommandError(err);
    } finally {
      e.busy = null;
      if (this.entries.get(id) === e) {
        this.rebind(e);
        if (hadError !== (entryError(e) !== null)) this.relayout();
      }
    }
  }
}

function searchText(c: ConnectionSummary): string {
  return `${c.label} ${c.support_code ?? ''} ${subtitle(c)} ${c.client_name} ${c.environment} ${identitySearchText(c)}`.toLowerCase();
}
