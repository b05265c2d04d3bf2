// Clients & settings → Team: join a team (the database address, the join key as a
// password field, the role's optional password), its status (the desktops and agents
// seen, the leader, the last refresh, the lag; "last known" when the database does not
// answer), and leave it. The join key and the password go to the shell once (the form)
// and are cleared from the fields at once; nothing sends them back. In a team the window
// shows the team's connections; a join or leave takes effect at the next start: the
// panel says so.
//
// `TeamWatch` asks the shell for the status at start, every few seconds while in a team
// (the header's reachable / unreachable mark), and after a join or leave.

import { api, toCommandError } from '../api';
import type { CommandError } from '../bindings/CommandError';
import type { TeamState } from '../bindings/TeamState';
import { formatInstant, h, replaceChildren, setText } from '../dom';
import { errorLine } from '../errors';
import { formatSpan } from '../i18n/format';
import { t } from '../i18n/index';
import { confirmDialog, toast } from './dialogs';
import { busy, errorSlot, field, input, secretInput, showError } from './form';

/** How often the status is read again while in a team. */
export const TEAM_POLL_MS = 3000;

function ago(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  return s < 1 ? t('team.ago.now') : t('team.ago', { span: formatSpan(s) });
}

export interface TeamCardOptions {
  /** After a join or leave: the new state (the header follows it). */
  onChange: (state: TeamState) => void;
}

export class TeamCard {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly joinForm: HTMLFormElement;
  private readonly address = input({ 'data-testid': 'team-address', required: true });
  private readonly joinKey = secretInput('team-join-key');
  private readonly password = secretInput('team-password');
  private readonly joinError = errorSlot('team-join-error');
  private readonly leaveError = errorSlot('team-leave-error');
  private readonly leaveButton = h(
    'button',
    { type: 'button', class: 'btn btn-danger-ghost', 'data-testid': 'team-leave' },
    t('team.leave'),
  );
  private state: TeamState | null = null;

  constructor(private readonly opts: TeamCardOptions) {
    this.address.placeholder = t('team.address.placeholder');
    this.joinKey.required = true;
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'team-join' },
      t('team.join'),
    );
    this.joinForm = h(
      'form',
      { novalidate: true, class: 'form', 'data-testid': 'team-join-form', 'aria-label': t('team.join.label') },
      field(t('team.address'), this.address, t('team.address.hint')),
      field(t('team.joinKey'), this.joinKey, t('team.joinKey.hint')),
      field(t('team.password'), this.password, t('team.password.hint')),
      this.joinError,
      h('div', { class: 'inline-actions' }, submit),
    );
    this.joinForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(submit, () => this.join());
    });
    this.leaveButton.addEventListener('click', () => void this.leave());
    this.body = h('div', { class: 'team-body', 'aria-live': 'polite' });
    this.el = h(
      'div',
      { class: 'card', 'data-testid': 'team-card' },
      h('h3', { id: 'team-title' }, t('team.title')),
      h('p', { class: 'hint', 'data-testid': 'team-local-note' }, t('team.localNote')),
      this.body,
    );
    this.render(null);
  }

  /** Show `state` (null: not known yet). */
  render(state: TeamState | null): void {
    this.state = state;
    if (state === null) {
      replaceChildren(this.body, h('p', { class: 'muted' }, t('team.loading')));
      return;
    }
    if (!state.in_team) {
      replaceChildren(this.body, h('p', { 'data-testid': 'team-none' }, t('team.none')), this.joinForm);
      return;
    }
    const name = state.team_name ?? '';
    const reach = h(
      'span',
      { class: `team-mark ${state.reachable ? 'team-ok' : 'team-down'}`, 'data-testid': 'team-reachable' },
      h('span', { 'aria-hidden': 'true' }, state.reachable ? '●' : '○'),
      ' ',
      state.reachable ? t('team.reachable') : t('team.unreachable'),
    );
    const rows: [string, Node | string][] = [
      [t('team.field.team'), name],
      [t('team.field.database'), h('span', {}, h('span', { class: 'mono' }, state.database ?? ''), ' — ', reach)],
      [t('team.field.machine'), state.machine ?? ''],
    ];
    const notes: Node[] = [];
    if (!state.reachable) {
      notes.push(
        h(
          'p',
          { class: 'form-error', role: 'status', 'data-testid': 'team-last-known' },
          state.checked_at
            ? t('team.lastKnown', { at: formatInstant(state.checked_at), ago: ago(state.checked_at) })
            : t('team.noLastKnown'),
        ),
      );
      if (state.unreachable) notes.push(h('p', { class: 'hint' }, state.unreachable));
    }
    if (state.checked_at) {
      rows.push(
        [
          t('team.field.leader'),
          state.leader
            ? t('team.leader', { member: state.leader.member, machine: state.leader.machine })
            : t('team.noLeader'),
        ],
        [
          t('team.field.lastRefresh'),
          state.last_refresh
            ? t('team.lastRefresh', {
                at: formatInstant(state.last_refresh.at),
                by: state.last_refresh.by ?? '?',
                on: state.last_refresh.on ?? '?',
              })
            : t('team.never'),
        ],
        [
          t('team.field.lag'),
          state.refresh_lag_seconds == null ? t('team.noLag') : formatSpan(Math.max(1, state.refresh_lag_seconds)),
        ],
        [t('team.field.checked'), formatInstant(state.checked_at)],
      );
    }
    const dl = h('dl', { class: 'team-fields', 'data-testid': 'team-status' });
    for (const [k, v] of rows) dl.append(h('dt', {}, k), h('dd', {}, v));
    const members = h('ul', { class: 'team-members', 'data-testid': 'team-members' });
    for (const m of state.members) {
      members.append(
        h(
          'li',
          { 'data-testid': 'team-member', 'data-machine': m.machine },
          h('strong', {}, m.machine),
          ' ',
          h('span', { class: 'badge' }, m.kind === 'agent' ? t('team.kind.agent') : t('team.kind.desktop')),
          m.this_machine ? ' ' : null,
          m.this_machine ? h('span', { class: 'muted' }, t('team.thisMachine')) : null,
          ' ',
          h('span', { class: 'muted' }, t('team.member', { member: m.member, version: m.app_version })),
          ' ',
          h(
            'span',
            { class: 'muted small' },
            t('team.lastSeen', { at: formatInstant(m.last_seen), ago: ago(m.last_seen) }),
          ),
        ),
      );
    }
    replaceChildren(
      this.body,
      ...notes,
      dl,
      h('h4', {}, t('team.members', { n: state.members.length })),
      state.members.length ? members : h('p', { class: 'muted' }, t('team.noMembers')),
      this.leaveError,
      h('div', { class: 'inline-actions' }, this.leaveButton),
    );
  }

  /** The status could not be read (not the database: that is a state). */
  showProblem(e: CommandError): void {
    replaceChildren(
      this.body,
      h('p', { class: 'form-error', role: 'alert', 'data-testid': 'team-problem' }, errorLine(e)),
      this.leaveError,
      h('div', { class: 'inline-actions' }, this.leaveButton),
    );
  }

  get current(): TeamState | null {
    return this.state;
  }

  private async join(): Promise<void> {
    const address = this.address.value.trim();
    const joinKey = this.joinKey.value;
    const password = this.password.value;
    // Write-only: cleared whatever happens next.
    this.joinKey.value = '';
    this.password.value = '';
    showError(this.joinError, null);
    if (!address || !joinKey.trim()) return showError(this.joinError, t('team.join.missing'));
    try {
      const state = await api.teamJoin({
        address,
        join_key: joinKey,
        password: password ? password : null,
        machine: null,
      });
      this.address.value = '';
      toast(t('team.joined', { name: state.team_name ?? '' }));
      this.render(state);
      this.opts.onChange(state);
    } catch (e) {
      showError(this.joinError, errorLine(toCommandError(e)));
    }
  }

  private async leave(): Promise<void> {
    const name = this.state?.team_name ?? '';
    const ok = await confirmDialog({
      title: t('team.leave.title', { name }),
      message: t('team.leave.message', { machine: this.state?.machine ?? '' }),
      okLabel: t('team.leave.ok'),
      danger: true,
    });
    if (!ok) return;
    showError(this.leaveError, null);
    try {
      const state = await busy(this.leaveButton, () => api.teamLeave());
      toast(t('team.left', { name }));
      this.render(state);
      this.opts.onChange(state);
    } catch (e) {
      showError(this.leaveError, errorLine(toCommandError(e)));
    }
  }
}

/** The header's team mark: the team's name and reachable / unreachable, in words. */
export class TeamMark {
  readonly el: HTMLElement;
  private readonly name = h('span', { class: 'team-name', 'data-testid': 'header-team-name' });
  private readonly dot = h('span', { 'aria-hidden': 'true' });
  private readonly words = h('span', {});
  private readonly reach = h(
    'span',
    { class: 'team-mark', 'data-testid': 'header-team-reach' },
    this.dot,
    ' ',
    this.words,
  );

  constructor() {
    this.el = h('span', { class: 'header-team', 'data-testid': 'header-team' }, this.name, ' ', this.reach);
    this.el.hidden = true;
  }

  show(state: TeamState | null): void {
    const inTeam = state?.in_team === true;
    this.el.hidden = !inTeam;
    if (!state || !inTeam) return;
    setText(this.name, t('header.team', { name: state.team_name ?? '' }));
    setText(this.dot, state.reachable ? '●' : '○');
    setText(this.words, state.reachable ? t('team.reachable') : t('team.unreachable'));
    this.reach.classList.toggle('team-ok', state.reachable);
    this.reach.classList.toggle('team-down', !state.reachable);
    this.el.dataset.reachable = String(state.reachable);
    this.el.title = state.reachable
      ? t('header.team.reachable')
      : state.checked_at
        ? t('header.team.lastKnown', { at: formatInstant(state.checked_at) })
        : t('header.team.unreachable');
  }
}

/** Reads the team status at start, every `TEAM_POLL_MS` while in a team, and on demand. */
export class TeamWatch {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly onState: (state: TeamState) => void,
    private readonly onError: (e: CommandError) => void,
  ) {}

  start(): void {
    void this.poll();
  }

  /** Read the status now (a view shown, a join or leave elsewhere). */
  async poll(): Promise<void> {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let inTeam = false;
    try {
      const state = await api.teamStatus();
      inTeam = state.in_team;
      if (!this.stopped) this.onState(state);
    } catch (e) {
      // Not the database (that is a state): a key missing from the keyring, a damaged
      // team.json. Shown in the Team section; tried again later.
      inTeam = true;
      if (!this.stopped) this.onError(toCommandError(e));
    }
    if (!this.stopped && inTeam) this.timer = setTimeout(() => void this.poll(), TEAM_POLL_MS);
  }

  /** After a join or leave: the new state; polling follows it. */
  set(state: TeamState): void {
    this.onState(state);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (state.in_team && !this.stopped) this.timer = setTimeout(() => void this.poll(), TEAM_POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
