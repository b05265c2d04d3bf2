// The window's top bar: the brand, the two views' navigation, the version and the
// "Add connection" button. It only shows which view is current; app.ts switches views.

import { h, setText } from '../dom';
import { t } from '../i18n/index';
import { TeamMark } from '../views/team';

export type ViewName = 'connections' | 'activity' | 'clients';

export interface HeaderOptions {
  onNavigate: (view: ViewName) => void;
  onAddConnection: () => void;
}

export class Header {
  readonly el: HTMLElement;
  private readonly nav: Record<ViewName, HTMLButtonElement>;
  private readonly version: HTMLElement;
  /** The team's name and whether its database answers (hidden when not in a team). */
  readonly team = new TeamMark();

  constructor(opts: HeaderOptions) {
    const addButton = h(
      'button',
      { type: 'button', class: 'btn btn-primary', 'data-testid': 'add-connection' },
      t('header.add'),
    );
    this.nav = {
      connections: h(
        'button',
        { type: 'button', class: 'nav-btn', 'aria-current': 'page', 'data-testid': 'nav-connections' },
        t('nav.connections'),
      ),
      activity: h('button', { type: 'button', class: 'nav-btn', 'data-testid': 'nav-activity' }, t('nav.activity')),
      clients: h('button', { type: 'button', class: 'nav-btn', 'data-testid': 'nav-clients' }, t('nav.clients')),
    };
    this.version = h('span', { class: 'version muted' });
    this.el = h(
      'header',
      { class: 'topbar' },
      h('h1', { class: 'brand' }, t('app.name')),
      h(
        'nav',
        { class: 'nav', 'aria-label': t('header.nav') },
        this.nav.connections,
        this.nav.activity,
        this.nav.clients,
      ),
      h('div', { class: 'spacer' }),
      this.team.el,
      this.version,
      addButton,
    );
    this.nav.connections.addEventListener('click', () => opts.onNavigate('connections'));
    this.nav.activity.addEventListener('click', () => opts.onNavigate('activity'));
    this.nav.clients.addEventListener('click', () => opts.onNavigate('clients'));
    addButton.addEventListener('click', () => opts.onAddConnection());
  }

  /** Mark `view`'s button as the current page. */
  setCurrent(view: ViewName): void {
    for (const [name, button] of Object.entries(this.nav)) {
      if (name === view) button.setAttribute('aria-current', 'page');
      else button.removeAttribute('aria-current');
    }
  }

  setVersion(version: string): void {
    setText(this.version, t('header.version', { version }));
  }
}
