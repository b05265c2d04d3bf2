// Countdown text and the ONE timer that drives every countdown in the window.
// Instants are parsed once per data update; a tick only compares strings and writes
// the text nodes whose displayed value changed.

import { formatAgo, formatSpan } from './i18n/format';
import { t } from './i18n/index';

const SECOND = 1000;

/**
 * Time left until `at` (epoch ms) seen at `now`. `null` → "unknown" (never "never": a
 * provider that sent no expiry has not promised the token lives forever).
 * Expired exactly when `at <= now`, as `Connection::status_at` decides.
 */
export function formatCountdown(at: number | null, now: number): string {
  if (at === null) return t('time.unknown');
  const ms = at - now;
  if (ms <= 0) return formatAgo(Math.floor(-ms / SECOND));
  // Round up: "1s" is shown until the instant itself, then "expired".
  return formatSpan(Math.ceil(ms / SECOND));
}

/** A text node bound to an instant; `update` writes only when the shown text changes. */
export class CountdownText {
  readonly node: Text;
  private at: number | null;
  private shown: string;
  private readonly prefix: string;
  private fixed: string | null = null;

  constructor(at: number | null, now: number, prefix = '') {
    this.at = at;
    this.prefix = prefix;
    this.shown = prefix + formatCountdown(at, now);
    this.node = document.createTextNode(this.shown);
  }

  /** Point at another instant (a data update); written at once if the text differs. */
  setTarget(at: number | null, now: number): boolean {
    this.at = at;
    return this.update(now);
  }

  /** Show `text` instead of the countdown (null: the countdown again). */
  suppress(text: string | null, now: number): boolean {
    this.fixed = text;
    return this.update(now);
  }

  /** Returns whether the DOM was written. */
  update(now: number): boolean {
    const text = this.fixed ?? this.prefix + formatCountdown(this.at, now);
    if (text === this.shown) return false;
    this.shown = text;
    this.node.data = text;
    return true;
  }

  get text(): string {
    return this.shown;
  }
}

export type TickListener = (now: number) => void;

export interface TickerOptions {
  now?: () => number;
  periodMs?: number;
  /** Pauses while `document.hidden`; defaults to the global document. */
  doc?: Document | null;
}

/**
 * One timer for the whole window: aligned to the wall-clock second, a single pending
 * timeout at any time, paused while the document is hidden, stopped with no listeners.
 */
export class Ticker {
  private readonly listeners = new Set<TickListener>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly now: () => number;
  private readonly period: number;
  private readonly doc: Document | null;
  private readonly onVisibility = (): void => {
    if (this.doc?.hidden) {
      this.stop();
    } else {
      this.tickNow();
      this.schedule();
    }
  };

  constructor(options: TickerOptions = {}) {
    this.now = options.now ?? (() => Date.now());
    this.period = options.periodMs ?? SECOND;
    this.doc = options.doc === undefined ? (typeof document === 'undefined' ? null : document) : options.doc;
    this.doc?.addEventListener('visibilitychange', this.onVisibility);
  }

  subscribe(listener: TickListener): () => void {
    this.listeners.add(listener);
    this.schedule();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Run every listener now (also used after the window becomes visible again). */
  tickNow(): void {
    const now = this.now();
    for (const l of this.listeners) l(now);
  }

  get running(): boolean {
    return this.timer !== null;
  }

  dispose(): void {
    this.stop();
    this.listeners.clear();
    this.doc?.removeEventListener('visibilitychange', this.onVisibility);
  }

  private schedule(): void {
    if (this.timer !== null || this.listeners.size === 0 || this.doc?.hidden) return;
    const delay = this.period - (this.now() % this.period);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tickNow();
      this.schedule();
    }, delay);
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
