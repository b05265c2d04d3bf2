// The app's info (version, sandbox, deep-link registration, tokens waiting for the keyring) shown where it belongs:
// the top bar, the sandbox bar, the clients view and a warning banner.

import type { AppInfo } from '../bindings/AppInfo';
import { formatShortInstant } from '../i18n/format';
import { t } from '../i18n/index';
import type { ClientsView } from '../views/clients';
import type { SandboxBar } from '../views/sandbox';
import { type Banners, StickyBanner } from './banners';
import type { Header } from './header';

/** The banner text when browser redirects cannot reach this window; null when they can. */
export function deepLinkBanner(info: AppInfo): string | null {
  if (info.single_instance && info.deep_link_problem == null) return null;
  const cause = info.deep_link_problem ?? t('banner.deepLink.notSingleInstance');
  return t('banner.deepLink', { cause: cause.replace(/[.\s]+$/, '') });
}

/** The banner text while refreshed tokens wait for a locked keyring; null when none do. */
export function keyringBanner(info: AppInfo): string | null {
  const n = info.unsaved_tokens.length;
  if (n === 0) return null;
  return t(n === 1 ? 'banner.keyring.one' : 'banner.keyring.other', { n, labels: info.unsaved_tokens.join(', ') });
}

/**
 * The banner text while the team's store does not answer (the list shown is the last
 * known one, and of when); null on this desktop's own store or while it answers.
 */
export function teamStoreBanner(info: AppInfo): string | null {
  const s = info.store;
  if (s.team == null || s.reachable) return null;
  return s.last_known_at != null
    ? t('banner.teamDown', { at: formatShortInstant(s.last_known_at) })
    : t('banner.teamDown.none');
}

export interface AppInfoTargets {
  header: Header;
  sandboxBar: SandboxBar;
  clients: ClientsView;
  banners: Banners;
}

/** A function that shows an app info on `t`. */
export function appInfoView(t: AppInfoTargets): (info: AppInfo) => void {
  const deepLink = new StickyBanner(t.banners, 'warning');
  const keyring = new StickyBanner(t.banners, 'warning');
  const teamDown = new StickyBanner(t.banners, 'error', 'team-down-banner');
  return (info) => {
    t.clients.setAppInfo(info);
    t.sandboxBar.setRunning(info.sandbox);
    t.header.setVersion(info.version);
    deepLink.set(deepLinkBanner(info));
    // Unlike the deep-link problem, this one ends by itself: the banner goes with it.
    const locked = keyringBanner(info);
    if (locked) keyring.set(locked);
    else keyring.clear();
    // Ends by itself too, when the team's database answers again.
    const down = teamStoreBanner(info);
    if (down) teamDown.set(down);
    else teamDown.clear();
  };
}
