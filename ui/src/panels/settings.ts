// Settings: validators, caps, schedule, idle/metered rules, blocklist, payout, key backup.

import { toBridgeError, type Bridge, type Settings } from '../bridge';
import { Panel, h } from '../dom';

const KB = 1024;
const GB = 1024 * 1024 * 1024;

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function numberOrNull(input: HTMLInputElement, scale: number): number | null {
  const v = input.value.trim();
  if (v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? Math.round(n * scale) : null;
}

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const hintId = hint ? `${control.id}-hint` : undefined;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('p', { class: 'small muted', id: hintId }, hint) : null,
  );
}

function check(id: string, label: string, hint: string): HTMLElement {
  return h(
    'div',
    { class: 'field check' },
    h('input', { type: 'checkbox', id }),
    h('label', { for: id }, label),
    h('p', { class: 'small muted' }, hint),
  );
}

export class SettingsPanel {
  readonly panel = new Panel('settings', 'Settings');
  readonly keyPanel: Panel;
  private readonly form: HTMLFormElement;
  private readonly msg = h('p', { class: 'msg', id: 'settings-msg', role: 'status' });
  private readonly keyBox = h('div', { id: 'key-box' });

  constructor(private readonly bridge: Bridge) {
    this.form = h(
      'form',
      { id: 'settings-form', novalidate: true, onsubmit: (e: Event) => this.save(e) },
      h(
        'fieldset',
        {},
        h('legend', {}, 'Where to work'),
        field('Validators', h('textarea', { id: 's-validators', rows: 3 }), 'One address per line. The node asks these servers what to fetch and sends them the results. A change here applies at the next start.'),
      ),
      h(
        'fieldset',
        {},
        h('legend', {}, 'How much'),
        field('Speed limit (KB/s)', h('input', { type: 'number', id: 's-rate', min: 1, step: 1, inputmode: 'numeric' }), 'Leave empty for no limit.'),
        field('Monthly cap (GB)', h('input', { type: 'number', id: 's-monthly', min: 0.1, step: 0.1 }), 'Sharing pauses when this much was used this month. Leave empty for no cap.'),
      ),
      h(
        'fieldset',
        {},
        h('legend', {}, 'When'),
        check('s-schedule-on', 'Only share during these hours', 'Local time. Outside these hours the node sleeps.'),
        h(
          'div',
          { class: 'row' },
          field('From', h('input', { type: 'time', id: 's-start', value: '22:00' })),
          field('Until', h('input', { type: 'time', id: 's-end', value: '07:00' })),
        ),
        check('s-idle', 'Only when this computer is idle', 'Pauses while you use the keyboard or mouse.'),
        check('s-metered', 'Pause on metered networks', 'For example a phone hotspot.'),
      ),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Never fetch'),
        field('Blocked domains', h('textarea', { id: 's-blocklist', rows: 4 }), 'One domain per line; subdomains are blocked too. No server can override this list.'),
      ),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Rewards and the app'),
        field('Payout address', h('input', { type: 'text', id: 's-payout', autocomplete: 'off', spellcheck: 'false' }), 'Where rewards are paid. Empty: your node key.'),
        check('s-login', 'Start at login', 'Gleaner starts in the tray when you log in.'),
        check('s-notify', 'Notifications', 'Epoch credited, paused by your cap, validator unreachable.'),
      ),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'settings-save' }, 'Save settings'), this.msg),
    );

    this.keyPanel = new Panel('key', 'Your node key');
  }

  private el<T extends HTMLElement>(id: string): T {
    return this.form.querySelector(`#${id}`) as T;
  }

  async load(): Promise<void> {
    this.panel.loading();
    try {
      this.fill(await this.bridge.settings());
      this.panel.content(this.form);
    } catch (err) {
      this.panel.error(toBridgeError(err), () => void this.load());
    }
  }

  /** Shows the public key and the backup control (the public key comes from the status). */
  showKey(publicKey: string): void {
    this.keyPanel.content(
      h('p', {}, 'Public key: ', h('code', { id: 'public-key' }, publicKey)),
      h(
        'p',
        { class: 'small' },
        'The backup key lets you move your node and its points to another computer. Anyone who has it can act as your node: keep it private.',
      ),
      h('button', { type: 'button', id: 'export-key', onclick: () => this.exportKey() }, 'Show backup key'),
      this.keyBox,
    );
  }

  private async exportKey(): Promise<void> {
    try {
      const key = await this.bridge.exportKey();
      const box = h('textarea', { readonly: true, rows: 2, id: 'backup-key', 'aria-label': 'Backup key' });
      box.value = key;
      this.keyBox.replaceChildren(h('p', { class: 'warn small' }, 'Copy this somewhere safe, then close the window.'), box);
      box.focus();
      box.select();
    } catch (err) {
      this.keyBox.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not export the key: ${toBridgeError(err).message}`));
    }
  }

  private fill(s: Settings): void {
    this.el<HTMLTextAreaElement>('s-validators').value = s.validators.join('\n');
    this.el<HTMLInputElement>('s-rate').value = s.rateCapBps !== null ? String(Math.round(s.rateCapBps / KB)) : '';
    this.el<HTMLInputElement>('s-monthly').value = s.monthlyCapBytes !== null ? String(+(s.monthlyCapBytes / GB).toFixed(1)) : '';
    this.el<HTMLInputElement>('s-schedule-on').checked = s.schedule !== null;
    if (s.schedule) {
      this.el<HTMLInputElement>('s-start').value = s.schedule.start;
      this.el<HTMLInputElement>('s-end').value = s.schedule.end;
    }
    this.el<HTMLInputElement>('s-idle').checked = s.idleOnly;
    this.el<HTMLInputElement>('s-metered').checked = s.pauseOnMetered;
    this.el<HTMLTextAreaElement>('s-blocklist').value = s.blocklist.join('\n');
    this.el<HTMLInputElement>('s-payout').value = s.payoutAddress ?? '';
    this.el<HTMLInputElement>('s-login').checked = s.startAtLogin;
    this.el<HTMLInputElement>('s-notify').checked = s.notifications;
  }

  private read(): Settings {
    const payout = this.el<HTMLInputElement>('s-payout').value.trim();
    return {
      validators: lines(this.el<HTMLTextAreaElement>('s-validators').value),
      rateCapBps: numberOrNull(this.el('s-rate'), KB),
      monthlyCapBytes: numberOrNull(this.el('s-monthly'), GB),
      schedule: this.el<HTMLInputElement>('s-schedule-on').checked
        ? {
            start: this.el<HTMLInputElement>('s-start').value,
            end: this.el<HTMLInputElement>('s-end').value,
            utcOffsetMinutes: -new Date().getTimezoneOffset(),
          }
        : null,
      idleOnly: this.el<HTMLInputElement>('s-idle').checked,
      pauseOnMetered: this.el<HTMLInputElement>('s-metered').checked,
      blocklist: lines(this.el<HTMLTextAreaElement>('s-blocklist').value).map((d) => d.toLowerCase()),
      payoutAddress: payout === '' ? null : payout,
      startAtLogin: this.el<HTMLInputElement>('s-login').checked,
      notifications: this.el<HTMLInputElement>('s-notify').checked,
    };
  }

  private async save(e: Event): Promise<void> {
    e.preventDefault();
    const button = this.el<HTMLButtonElement>('settings-save');
    button.disabled = true;
    this.msg.className = 'msg';
    this.msg.textContent = 'Saving…';
    try {
      this.fill(await this.bridge.updateSettings(this.read()));
      this.msg.textContent = 'Saved.';
    } catch (err) {
      this.msg.className = 'msg error';
      this.msg.textContent = `Not saved: ${toBridgeError(err).message}`;
    } finally {
      button.disabled = false;
    }
  }
}
