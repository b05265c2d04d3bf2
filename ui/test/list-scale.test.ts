// 1,000 connections: built once with fragments, and a tick writes only what changed on
// the rows on screen.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { Connection } from '../src/bindings/Connection';
import { Ticker, formatCountdown } from '../src/countdown';
import { ConnectionList, type VisibilityFactory } from '../src/views/list';
import { NOW, conn, countWrites, iso } from './fixtures';

const noop = async () => {};
const PROVIDERS = ['flowaccount', 'fedex', 'iot'] as const;

function thousand(accessAt: (i: number) => number): Connection[] {
  return Array.from({ length: 1000 }, (_, i) => {
    const provider = PROVIDERS[i % 3]!;
    return conn({
      id: `c${String(i).padStart(4, '0')}`,
      label: `Account ${i}`,
      provider,
      access_expires: { at: iso(accessAt(i)), source: 'relative_seconds' },
      refresh_expires: provider === 'fedex' ? null : { at: iso(NOW + 20 * 3600_000 + 500), source: 'estimated' },
      username: provider === 'iot' ? `user${i}` : null,
    } as never);
  });
}

function mount(visibility?: VisibilityFactory) {
  const ticker = new Ticker({ doc: null });
  const list = new ConnectionList({
    ticker,
    actions: { refresh: noop, logout: noop, copy: noop, reconnect: noop },
    onSelect: () => {},
    ...(visibility ? { visibility } : {}),
  });
  document.body.appendChild(list.el);
  return { ticker, list };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW + 400);
});
afterEach(() => {
  vi.useRealTimers();
  document.body.innerHTML = '';
});

describe('1,000 connections', () => {
  it('builds every row off-document: one insertion per provider group', async () => {
    const { list, ticker } = mount();
    const conns = thousand((i) => NOW + 2 * 3600_000 + i * 1000);
    const records = await countWrites(list.el, () => list.setAll(conns));
    const rowInsertions = records.filter((r) => r.type === 'childList' && (r.target as Element).classList?.contains('group-rows'));
    expect(rowInsertions).toHaveLength(3);
    expect(list.el.querySelectorAll('[data-testid="connection-row"]')).toHaveLength(1000);
    ticker.dispose();
  });

  it('a tick writes exactly the countdown texts whose value changed', async () => {
    const { list, ticker } = mount(); // no IntersectionObserver in jsdom: every row counts as visible
    // 100 rows within the hour (their seconds change every tick), 900 hours away.
    const accessAt = (i: number) => (i < 100 ? NOW + 10 * 60_000 + i * 1000 + 500 : NOW + 3 * 3600_000 + i * 7000 + 500);
    const conns = thousand(accessAt);
    list.setAll(conns);

    const t0 = Date.now();
    const t1 = NOW + 1000;
    let expected = 0;
    conns.forEach((_, i) => {
      if (formatCountdown(accessAt(i), t0) !== formatCountdown(accessAt(i), t1)) expected += 1;
    });
    const records = await countWrites(list.el, () => {
      vi.advanceTimersByTime(600); // the one aligned tick at NOW + 1 s
    });
    const textWrites = records.filter((r) => r.type === 'characterData');
    expect(textWrites).toHaveLength(expected);
    expect(expected).toBeGreaterThanOrEqual(100);
    expect(expected).toBeLessThan(150);
    expect(records.filter((r) => r.type !== 'characterData')).toHaveLength(0); // no chip/attribute churn
    expect(vi.getTimerCount()).toBe(1);
    ticker.dispose();
  });

  it('a tick touches only the rows on screen', async () => {
    const visibleCount = 30;
    let observed = 0;
    const visibility: VisibilityFactory = (_root, onChange) => ({
      observe: (el) => onChange(el, observed++ < visibleCount),
      unobserve: () => {},
      disconnect: () => {},
    });
    const { list, ticker } = mount(visibility);
    // Every row is in the seconds range: all would change on every tick.
    list.setAll(thousand((i) => NOW + 30 * 60_000 + i * 1000 + 500));
    const records = await countWrites(list.el, () => {
      vi.advanceTimersByTime(600);
    });
    expect(records.filter((r) => r.type === 'characterData')).toHaveLength(visibleCount);
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
