// The change feed: from the snapshot shown on, a long poll (`changes`) brings every
// change in order; a resync (the feed lost track) loads a whole snapshot again. On a
// failure it says so once and retries with a growing pause (at most 30 s).

import { api, toCommandError } from '../api';
import type { ChangeEvent } from '../bindings/ChangeEvent';
import type { CommandError } from '../bindings/CommandError';
import type { Snapshot } from '../bindings/Snapshot';

export interface ChangeFeedOptions {
  /** Show a whole snapshot (the first one, or after a resync). */
  onSnapshot: (snap: Snapshot) => void;
  onEvent: (ev: ChangeEvent) => void;
  /** The feed failed after working (or at once): called once per run of failures. */
  onUnavailable: (e: CommandError) => void;
}

export class ChangeFeed {
  /** The change feed's version the window shows. */
  private shownVersion = 0;
  private stopped = false;

  constructor(private readonly opts: ChangeFeedOptions) {}

  /** Show a snapshot; the feed follows on from its version. */
  show(snap: Snapshot): void {
    this.opts.onSnapshot(snap);
    this.shownVersion = snap.version;
  }

  /** Follow the change feed from the version shown, until stopped. */
  async follow(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const batch = await api.changes(this.shownVersion);
        if (this.stopped) return;
        failures = 0;
        for (const ev of batch.events) this.opts.onEvent(ev);
        this.shownVersion = batch.version;
        if (batch.resync || batch.events.some((ev) => ev.kind === 'resync')) this.show(await api.snapshot());
      } catch (e) {
        if (this.stopped) return;
        failures += 1;
        if (failures === 1) this.opts.onUnavailable(toCommandError(e));
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** failures)));
      }
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
