import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { CountdownText, Ticker, formatCountdown } from '../src/countdown';
import { NOW, countWrites } from './fixtures';

const s = 1000;
const m = 60 * s;
const hr = 60 * m;
const d = 24 * hr;

describe('formatCountdown', () => {
  it.each([
    [1, '1s'],
    [59 * s, '59s'],
    [59 * s + 1, '1m 0s'], // rounds up: never shows less than is left
    [60 * s, '1m 0s'],
    [59 * m + 12 * s, '59m 12s'],
    [hr - 1 * s, '59m 59s'],
    [hr, '1h 0m'],
    [23 * hr + 59 * m + 59 * s, '23h 59m'],
    [d, '1d 0h'],
    [2 * d + 3 * hr + 7 * m, '2d 3h'],
  ])('%i ms left → %s', (left, text) => {
    expect(formatCountdown(NOW + left, NOW)).toBe(text);
  });

  it.each([
    [0, 'expired just now'], // expired exactly at the instant, as status_at decides
    [-999, 'expired just now'],
    [-1 * s, 'expired 1s ago'],
    [-59 * s, 'expired 59s ago'],
    [-4 * m - 30 * s, 'expired 4m ago'],
    [-3 * hr, 'expired 3h ago'],
    [-2 * d - 5 * hr, 'expired 2d ago'],
  ])('%i ms left → %s', (left, text) => {
    expect(formatCountdown(NOW + left, NOW)).toBe(text);
  });

  it('says "unknown", never "never", without an instant', () => {
    expect(formatCountdown(null, NOW)).toBe('unknown');
  });
});

describe('CountdownText', () => {
  it('writes the text node only when the shown text changes', () => {
    const c = new CountdownText(NOW + 2 * hr, NOW);
    expect(c.node.data).toBe('2h 0m');
    expect(c.update(NOW + 1 * s)).toBe(true); // 1h 59m
    expect(c.node.data).toBe('1h 59m');
    expect(c.update(NOW + 2 * s)).toBe(false); // still 1h 59m
    expect(c.setTarget(null, NOW)).toBe(true);
    expect(c.node.data).toBe('unknown');
  });
});

describe('Ticker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW + 400); // mid-second: the first tick aligns to the next second
  });
  afterEach(() => vi.useRealTimers());

  it('drives many countdowns with one timer, aligned to the second', () => {
    const ticker = new Ticker();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) ticker.subscribe((now) => i === 0 && seen.push(now));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(600);
    expect(seen).toEqual([NOW + 1000]);
    vi.advanceTimersByTime(3000);
    expect(seen).toEqual([NOW + 1000, NOW + 2000, NOW + 3000, NOW + 4000]);
    expect(vi.getTimerCount()).toBe(1);
    ticker.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('writes only the countdowns whose displayed value changed', async () => {
    const ticker = new Ticker();
    const host = document.createElement('div');
    const texts: CountdownText[] = [];
    // 10 in the seconds range (change every tick), 90 in hours (change once a minute).
    for (let i = 0; i < 100; i++) {
      const at = i < 10 ? NOW + 30 * s : NOW + 5 * hr + i * m + 30 * s;
      const t = new CountdownText(at, Date.now());
      texts.push(t);
      host.appendChild(t.node);
    }
    ticker.subscribe((now) => {
      for (const t of texts) t.update(now);
    });
    const records = await countWrites(host, () => {
      vi.advanceTimersByTime(600); // one tick at NOW + 1 s
    });
    expect(records.filter((r) => r.type === 'characterData')).toHaveLength(10);
    ticker.dispose();
  });

  it('pauses while the document is hidden and catches up when shown', () => {
    let hidden = false;
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
    const ticker = new Ticker();
    const calls: number[] = [];
    ticker.subscribe((now) => calls.push(now));
    hidden = true;
    document.dispatchEvent(new Event('visibilitychange'));
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(calls).toEqual([]);
    hidden = false;
    document.dispatchEvent(new Event('visibilitychange'));
    expect(calls).toHaveLength(1); // immediate catch-up tick
    expect(vi.getTimerCount()).toBe(1);
    ticker.dispose();
    delete (document as unknown as Record<string, unknown>).hidden;
  });

  it('stops when the last listener leaves', () => {
    const ticker = new Ticker();
    const off = ticker.subscribe(() => {});
    expect(ticker.running).toBe(true);
    off();
    expect(ticker.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
