// 1,000 connections: only the rows in view exist in the DOM, recycled as the list
// scrolls; a tick writes only the countdown texts that changed, on those rows only.
// jsdom has no layout: the view is window.innerHeight (768 px) tall and items have the
// list's fallback heights.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { ConnectionSummary } from '../src/bindings/ConnectionSummary';
import { Ticker, formatCountdown } from '../src/countdown';
import { ConnectionList, FALLBACK_HEIGHTS } from '../src/views/list';
import { NOW, conn, countWrites, iso } from './fixtures';

const noop = async () => {};
const PROVIDERS = ['flowaccount', 'fedex', 'iot'] as const;
const VIEW = 768;

/** Labels sort in index order, so row i of a group is connection i's place. */
function thousand(
  accessAt: (i: number) => number,
  provider?: (i: number) => (typeof PROVIDERS)[number],
): ConnectionSummary[] {
  return Array.from({ length: 1000 }, (_, i) => {
    const p = provider ? provider(i) : PROVIDERS[i % 3]!;
    return conn({
      id: `c${String(i).padStart(4, '0')}`,
      label: `Account ${String(i).padStart(4, '0')}`,
      provider: p,
      access_expires: { at: iso(accessAt(i)), source: 'relative_seconds' },
      refresh_expires: p === 'fedex' ? null : { at: iso(NOW + 20 * 3600_000 + 30 * 60_000), source: 'estimated' },
      username: p === 'iot' ? `user${i}` : null,
    } as never);
  });
}

function mount() {
  const ticker = new Ticker({ doc: null });
  const scroll = document.createElement('div');
  document.body.appendChild(scroll);
  const list = new ConnectionList({
    ticker,
    actions: { refresh: noop, logout: noop, copy: noop, reconnect: noop },
    onSelect: () => {},
    scrollRoot: scroll,
  });
  scroll.appendChild(list.el);
  const scrollTo = (top: number) => {
    scroll.scrollTop = top;
    scroll.dispatchEvent(new Event('scroll'));
  };
  return { ticker, list, scroll, scrollTo };
}

/** Whether a row element is within the (unscrolled) view. */
const inView = (el: HTMLElement | undefined) => el !== undefined && Number.parseFloat(el.style.top) < VIEW;
const rowEls = (root: ParentNode) => Array.from(root.querySelectorAll<HTMLElement>('[data-testid="connection-row"]'));
const ids = (root: ParentNode) => rowEls(root).map((r) => r.dataset.connectionId);
/** Rows that fit the view, plus the overscan on either side, plus the group header. */
const MAX_ROWS = Math.ceil((VIEW + 2 * 240) / FALLBACK_HEIGHTS.row) + 2;

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW + 400);
});
afterEach(() => {
  vi.useRealTimers();
  document.body.innerHTML = '';
});

describe('1,000 connections', () => {
  it('only the rows in view exist in the DOM; a small overscan from the first tick on', () => {
    const { list, ticker } = mount();
    list.setAll(
      thousand(
        (i) => NOW + 2 * 3600_000 + i * 1000,
        () => 'flowaccount',
      ),
    );
    // The first frame: the rows in view only.
    expect(rowEls(list.el).every((el) => inView(el))).toBe(true);
    expect(rowEls(list.el).length).toBe(Math.ceil((VIEW - FALLBACK_HEIGHTS.group) / FALLBACK_HEIGHTS.row));
    vi.advanceTimersByTime(600);
    const n = rowEls(list.el).length;
    expect(rowEls(list.el).some((el) => !inView(el))).toBe(true);
    expect(n).toBeLessThanOrEqual(MAX_ROWS);
    expect(list.renderedRowCount).toBe(n);
    expect(ids(list.el)[0]).toBe('c0000');
    // The container is as tall as all of them: the scrollbar is the whole list's.
    expect(list.el.style.height).toBe(`${FALLBACK_HEIGHTS.group + 1000 * FALLBACK_HEIGHTS.row}px`);
    expect(list.el.getAttribute('aria-rowcount')).toBe('1001');
    ticker.dispose();
  });

  it('scrolling shows later rows, in order, on recycled elements', () => {
    const { list, ticker, scrollTo } = mount();
    list.setAll(
      thousand(
        (i) => NOW + 2 * 3600_000 + i * 1000,
        () => 'flowaccount',
      ),
    );
    const before = new Set(rowEls(list.el));
    // Row 500 at the top of the view (the group header is above row 0).
    scrollTo(FALLBACK_HEIGHTS.group + 500 * FALLBACK_HEIGHTS.row);
    const shown = ids(list.el);
    expect(shown).toContain('c0500');
    expect(shown).toContain('c0510');
    // Of the first rows only the tab stop stays (keyboard focus returns there).
    expect(shown.filter((id) => id! < 'c0400')).toEqual(['c0000']);
    expect(list.rowElement('c0000')!.tabIndex).toBe(0);
    expect(shown).toEqual([...shown].sort()); // DOM order is display order
    expect(rowEls(list.el).length).toBeLessThanOrEqual(MAX_ROWS + 1); // + the pinned tab stop
    // Every element of the first screen is reused, bound to another connection; new
    // ones are made only for the overscan above the view.
    const recycled = rowEls(list.el).filter((el) => before.has(el));
    expect(recycled).toHaveLength(before.size);
    const r = list.rowElement('c0505')!;
    expect(r.style.top).toBe(`${FALLBACK_HEIGHTS.group + 505 * FALLBACK_HEIGHTS.row}px`);
    expect(r.querySelector('.row-label')!.textContent).toBe('Account 0505');
    ticker.dispose();
  });

  it('a row scrolled into view shows its own live countdown', () => {
    const { list, ticker, scrollTo } = mount();
    // Row i expires i seconds after the half hour: every row shows a different text.
    const accessAt = (i: number) => NOW + 30 * 60_000 + i * 1000 + 500;
    list.setAll(thousand(accessAt, () => 'flowaccount'));
    scrollTo(FALLBACK_HEIGHTS.group + 800 * FALLBACK_HEIGHTS.row);
    const countdown = (id: string) =>
      list.rowElement(id)!.querySelector('[data-testid="access-countdown"]')!.textContent;
    expect(countdown('c0800')).toBe(formatCountdown(accessAt(800), Date.now()));
    expect(countdown('c0805')).toBe(formatCountdown(accessAt(805), Date.now()));
    vi.advanceTimersByTime(600); // the aligned tick at NOW + 1 s
    expect(countdown('c0800')).toBe(formatCountdown(accessAt(800), NOW + 1000));
    expect(countdown('c0800')).not.toBe(formatCountdown(accessAt(800), NOW + 400));
    // Back to the top: the recycled elements show the first rows' times again.
    scrollTo(0);
    expect(countdown('c0003')).toBe(formatCountdown(accessAt(3), Date.now()));
    ticker.dispose();
  });

  it('a tick writes exactly the countdown texts on screen whose value changed', async () => {
    const { list, ticker } = mount();
    // Rows alternate: within the hour (seconds change every tick) and hours away.
    const accessAt = (i: number) =>
      i % 2 === 0 ? NOW + 10 * 60_000 + i * 1000 + 500 : NOW + 3 * 3600_000 + i * 7000 + 500;
    const conns = thousand(accessAt);
    list.setAll(conns);
    vi.advanceTimersByTime(600); // the first tick (NOW + 1 s) adds the overscan rows
    const onScreen = conns.filter((c) => inView(list.rowElement(c.id)));
    const t0 = Date.now();
    const t1 = NOW + 2000;
    let expected = 0;
    for (const c of onScreen) {
      const at = Date.parse(c.access_expires!.at);
      if (formatCountdown(at, t0) !== formatCountdown(at, t1)) expected += 1;
    }
    const records = await countWrites(list.el, () => {
      vi.advanceTimersByTime(1000);
    });
    const textWrites = records.filter((r) => r.type === 'characterData');
    expect(textWrites).toHaveLength(expected);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(onScreen.length);
    expect(records.filter((r) => r.type !== 'characterData')).toHaveLength(0); // no chip/attribute churn
    expect(vi.getTimerCount()).toBe(1); // one timer for every countdown
    ticker.dispose();
  });

  it('a tick touches only the rows in view; the overscan catches up when scrolled to', async () => {
    const { list, ticker, scrollTo } = mount();
    // Every row is in the seconds range: all would change on every tick.
    const accessAt = (i: number) => NOW + 30 * 60_000 + i * 1000 + 500;
    list.setAll(thousand(accessAt, () => 'flowaccount'));
    vi.advanceTimersByTime(600); // the first tick adds the overscan
    const shown = rowEls(list.el);
    const visible = shown.filter((el) => inView(el));
    expect(visible.length).toBeLessThan(shown.length); // there is an overscan below
    const records = await countWrites(document.body, () => {
      vi.advanceTimersByTime(1000);
    });
    expect(records.filter((r) => r.type === 'characterData')).toHaveLength(visible.length);
    const below = shown.find((el) => !inView(el) && el.dataset.connectionId !== 'c0000')!;
    const id = below.dataset.connectionId!;
    const countdown = () => list.rowElement(id)!.querySelector('[data-testid="access-countdown"]')!.textContent;
    expect(countdown()).not.toBe(formatCountdown(accessAt(Number(id.slice(1))), Date.now()));
    scrollTo(FALLBACK_HEIGHTS.row * 4);
    expect(countdown()).toBe(formatCountdown(accessAt(Number(id.slice(1))), Date.now()));
    ticker.dispose();
  });

  it('End and arrow keys move the selection through rows not yet in the DOM, keeping focus', () => {
    const { list, ticker, scroll } = mount();
    list.setAll(
      thousand(
        (i) => NOW + 2 * 3600_000 + i * 1000,
        () => 'flowaccount',
      ),
    );
    list.select('c0000', true);
    const key = (k: string) =>
      (document.activeElement as HTMLElement).dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true }));
    key('End');
    expect(list.selected).toBe('c0999');
    expect((document.activeElement as HTMLElement).dataset.connectionId).toBe('c0999');
    expect(scroll.scrollTop).toBeGreaterThan(900 * FALLBACK_HEIGHTS.row);
    key('ArrowUp');
    expect(list.selected).toBe('c0998');
    expect(document.activeElement).toBe(list.rowElement('c0998'));
    expect(list.rowElement('c0998')!.tabIndex).toBe(0);
    expect(list.renderedRowCount).toBeLessThanOrEqual(MAX_ROWS + 1);
    ticker.dispose();
  });

  it('status chips change on the tick that crosses the boundary, and only then', async () => {
    const { list, ticker } = mount();
    // Expires 5 min + 1.5 s from the first tick's time: expiring soon two ticks later.
    list.setAll([conn({ id: 'x', access_expires: { at: iso(NOW + 5 * 60_000 + 1500), source: 'jwt_exp' } } as never)]);
    const chip = list.rowElement('x')!.querySelector('[data-testid="status-chip"]')!;
    vi.advanceTimersByTime(600); // NOW + 1 s: 5m 0.5s left
    expect(chip.textContent).toBe('Active');
    vi.advanceTimersByTime(1000); // NOW + 2 s: 4m 59.5s left
    expect(chip.textContent).toBe('Expiring soon');
    const records = await countWrites(list.el, () => {
      vi.advanceTimersByTime(1000);
    });
    expect(records.filter((r) => r.target === chip || r.target.parentNode === chip)).toHaveLength(0);
    ticker.dispose();
  });
});
