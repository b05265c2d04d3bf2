// The app's info (version, sandbox, deep-link registration) shown where it belongs:
// the top bar, the sandbox bar, the clients view and a warning banner.

import type { AppInfo } from '../bindings/AppInfo';
import type { ClientsView } from '../views/clients';
import type { SandboxBar } from '../views/sandbox';
import { type Banners, StickyBanner } from './banners';
import type { Header } from './header';

/** The banner text when browser redirects cannot reach this window; null when they can. */
export function deepLinkBanner(info: AppInfo): string | null {
  if (info.single_instance && info.deep_link_problem == null) return null;
  const cause = info.deep_link_problem ?? 'Authdeck is not running as a single instance';
  return `${cause.replace(/[.\s]+$/, '')}: FlowAccount's browser redirects can't reach Authdeck. When you connect a business, paste the redirect URL from your browser instead.`;
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
  return (info) => {
    t.clients.setAppInfo(info);
    t.sandboxBar.setRunning(info.sandbox);
    t.header.setVersion(info.version);
    deepLink.set(deepLinkBanner(info));
  };
}
