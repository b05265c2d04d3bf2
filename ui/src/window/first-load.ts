// The first list on screen. It comes with the page (the shell's first snapshot, see
// api.ts), so it is in the window's first frame; without one (tests, a dev server) it
// is asked for. Then the shell is told the list is shown.

import { api, toCommandError } from '../api';
import type { CommandError } from '../bindings/CommandError';
import type { Snapshot } from '../bindings/Snapshot';
import type { ChangeFeed } from './feed';

/**
 * Show the first list through `feed`: `first`, else a snapshot asked for; `onFailed`
 * when that fails. Settles once the list is on screen (or its failure is shown).
 */
export async function showFirstList(
  first: Snapshot | null,
  feed: ChangeFeed,
  onFailed: (e: CommandError) => void,
): Promise<void> {
  if (first) {
    feed.show(first);
    // Nothing competes with the frame that paints the first list.
    await listRendered();
  } else {
    try {
      feed.show(await api.snapshot());
    } catch (e) {
      onFailed(toCommandError(e));
    }
    void listRendered();
  }
}

/**
 * The first list is in the DOM: mark it, and tell the shell after the next paint (the
 * list is on screen, not just in the DOM). Settles once the shell has been told.
 */
function listRendered(): Promise<void> {
  if (typeof performance !== 'undefined' && typeof performance.mark === 'function') {
    performance.mark('authdeck:list-rendered');
  }
  document.documentElement.dataset.listReady = 'true';
  return new Promise<void>((resolve) => {
    const markReady = () =>
      setTimeout(() => {
        void api.markReady().catch(() => {});
        resolve();
      }, 0);
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(markReady);
    else markReady();
  });
}
