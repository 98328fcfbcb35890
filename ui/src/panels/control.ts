// The status banner with the Share/Pause control, always at the top of the window.

import { toBridgeError, type Bridge, type Status } from '../bridge';
import { formatTime, h } from '../dom';

const LABELS: Record<Status['state'], string> = {
  sharing: 'Sharing',
  paused: 'Paused',
  capped: 'Paused by your cap',
  offline: 'Offline',
  error: 'Error',
};

const EXPLAIN: Record<Status['state'], string> = {
  sharing: 'Your idle bandwidth is fetching public pages for the network.',
  paused: 'Nothing is fetched on your connection until you resume.',
  capped: 'A bandwidth cap you set was reached.',
  offline: 'No validator can be reached right now; the app keeps trying.',
  error: 'Something went wrong; see the details below.',
};

export class ControlPanel {
  readonly root = h('section', { class: 'control', id: 'control', 'aria-label': 'Status', 'data-state': 'loading' });
  private status: Status | null = null;

  constructor(private readonly bridge: Bridge) {
    this.root.append(h('p', { class: 'muted' }, 'Loading status…'));
  }

  showError(message: string, retry: () => void): void {
    this.root.dataset.state = 'error';
    this.root.replaceChildren(
      h(
        'div',
        { class: 'error', role: 'alert' },
        h('p', {}, h('strong', {}, 'Could not reach the node. '), message),
        h('button', { type: 'button', onclick: () => retry() }, 'Try again'),
      ),
    );
  }

  update(status: Status): void {
    this.status = status;
    this.root.dataset.state = 'ready';
    const sharing = status.state === 'sharing' || status.state === 'offline';
    const main = sharing
      ? h('button', { type: 'button', class: 'primary', id: 'pause', onclick: () => this.act(() => this.bridge.pause()) }, 'Pause sharing')
      : h('button', { type: 'button', class: 'primary', id: 'resume', onclick: () => this.act(() => this.bridge.resume()) }, 'Share now');
    const hour = sharing
      ? h('button', { type: 'button', id: 'pause-hour', onclick: () => this.act(() => this.bridge.pauseFor(60)) }, 'Pause for 1 hour')
      : null;
    const until =
      status.state === 'paused' && status.pausedUntilMs !== null
        ? h('p', { class: 'small' }, `Resumes by itself at ${formatTime(status.pausedUntilMs)}.`)
        : null;
    this.root.replaceChildren(
      h(
        'div',
        { class: 'control-status' },
        h('span', { class: `dot dot-${status.state}`, 'aria-hidden': 'true' }),
        h(
          'div',
          {},
          h('p', { class: 'state', id: 'state', 'data-node-state': status.state, role: 'status' }, LABELS[status.state]),
          h('p', { class: 'small' }, status.detail ?? EXPLAIN[status.state]),
          until,
        ),
      ),
      h('div', { class: 'control-actions' }, main, hour),
      h('p', { class: 'msg small', id: 'control-msg', role: 'alert' }),
    );
  }

  private async act(call: () => Promise<Status>): Promise<void> {
    const buttons = this.root.querySelectorAll('button');
    buttons.forEach((b) => (b.disabled = true));
    try {
      this.update(await call());
      this.root.querySelector<HTMLButtonElement>('.primary')?.focus();
    } catch (err) {
      buttons.forEach((b) => (b.disabled = false));
      const msg = this.root.querySelector('#control-msg');
      if (msg) msg.textContent = `That did not work: ${toBridgeError(err).message}`;
    }
  }

  get current(): Status | null {
    return this.status;
  }
}
