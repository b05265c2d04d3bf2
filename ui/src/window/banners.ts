// The banners under the top bar: problems that stay until dismissed (a toast, in
// views/dialogs.ts, is for news that goes by itself).

import { h, setText } from '../dom';
import { t } from '../i18n/index';

export type BannerKind = 'warning' | 'error';

export class Banners {
  readonly el: HTMLElement = h('div', { class: 'banners' });

  /** Add a banner with a dismiss button; returns its element. */
  show(text: string, kind: BannerKind, testid = 'error-banner'): HTMLElement {
    const dismiss = h('button', { type: 'button', class: 'btn btn-ghost', 'aria-label': t('banner.dismiss') }, '×');
    const el = h(
      'div',
      { class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': testid },
      h('span', {}, text),
      dismiss,
    );
    dismiss.addEventListener('click', () => el.remove());
    this.el.append(el);
    return el;
  }
}

/** One banner about a lasting condition: shown once, its text kept current. */
export class StickyBanner {
  private el: HTMLElement | null = null;

  constructor(
    private readonly banners: Banners,
    private readonly kind: BannerKind,
    private readonly testid?: string,
  ) {}

  /**
   * Show `text`: a new banner when there is none on screen (never shown, or dismissed),
   * else the shown one's text. `null` leaves the banner as it is.
   */
  set(text: string | null): void {
    if (text && !this.el?.isConnected) this.el = this.banners.show(text, this.kind, this.testid);
    else if (text && this.el?.firstElementChild) setText(this.el.firstElementChild, text);
  }

  /** Remove the banner, if it is on screen. */
  clear(): void {
    this.el?.remove();
    this.el = null;
  }
}
