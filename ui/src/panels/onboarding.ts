// First-run onboarding: the safety policy in plain words, shown once as a modal dialog.

import { toBridgeError, type Bridge } from '../bridge';
import { h } from '../dom';

const RULES: [string, string][] = [
  ['Only reads public pages', 'The app only makes plain GET requests, the kind your browser makes to open a page. It never posts forms, logs in or sends anything to the sites it visits.'],
  ['No cookies, no accounts', 'No cookies are kept and none of your browser data is ever touched.'],
  ['Public addresses only', 'It never connects to your home network, your router or any private address, even if told to.'],
  ['Respects site owners', 'It obeys every site\u2019s robots.txt and visits each site slowly, one page at a time.'],
  ['Small and short', 'Every page has a size and time limit, so a fetch never runs away with your bandwidth.'],
  ['Your blocklist wins', 'Domains you block are never fetched. No server can override your blocklist or these rules.'],
  ['You see everything', 'Every request made on your connection is listed in Activity. You can pause at any time, or cap the bandwidth used.'],
];

export function onboarding(bridge: Bridge, onDone: () => void): HTMLDialogElement {
  const msg = h('p', { class: 'msg', role: 'alert' });
  const start = h('button', { type: 'button', class: 'primary', id: 'onboarding-start' }, 'I understand, start sharing');
  const dialog = h(
    'dialog',
    { id: 'onboarding', 'aria-labelledby': 'onboarding-title' },
    h('h2', { id: 'onboarding-title' }, 'Welcome to Gleaner'),
    h(
      'p',
      {},
      'Gleaner uses the bandwidth you are not using to fetch public web pages for an open dataset, and rewards you with points. Here is what it will and will not do on your connection:',
    ),
    h('ul', { class: 'rules' }, ...RULES.map(([title, text]) => h('li', {}, h('strong', {}, title), ' — ', text))),
    msg,
    h('div', { class: 'actions' }, start),
  );
  // Escape must not skip the explanation: the dialog only closes through the button.
  dialog.addEventListener('cancel', (e) => e.preventDefault());
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      await bridge.completeOnboarding();
      dialog.close();
      dialog.remove();
      onDone();
    } catch (err) {
      msg.textContent = `Could not save: ${toBridgeError(err).message}`;
      start.disabled = false;
    }
  });
  return dialog;
}
