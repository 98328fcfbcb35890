// Entry point: connects the bridge, lays out the views and keeps them fresh from pushed events.

import './style.css';
import { connect, toBridgeError, type Bridge, type Status } from './bridge';
import { h } from './dom';
import { ActivityPanel } from './panels/activity';
import { ControlPanel } from './panels/control';
import { onboarding } from './panels/onboarding';
import { Overview } from './panels/overview';
import { SettingsPanel } from './panels/settings';

type View = 'overview' | 'activity' | 'settings';

function start(bridge: Bridge): void {
  const control = new ControlPanel(bridge);
  const overview = new Overview();
  const activity = new ActivityPanel(bridge);
  const settings = new SettingsPanel(bridge);

  const views: Record<View, HTMLElement> = {
    overview: h('div', { id: 'view-overview', class: 'view' }, overview.root),
    activity: h('div', { id: 'view-activity', class: 'view', hidden: true }, activity.panel.root),
    settings: h('div', { id: 'view-settings', class: 'view grid', hidden: true }, settings.panel.root, settings.keyPanel.root),
  };
  const loaded = new Set<View>(['overview']);
  const main = h('main', { id: 'main', tabindex: -1 }, ...Object.values(views));
  const navButtons = (Object.keys(views) as View[]).map((v) =>
    h(
      'button',
      { type: 'button', id: `nav-${v}`, 'aria-controls': `view-${v}`, 'aria-current': v === 'overview' ? 'page' : null, onclick: () => show(v) },
      v[0].toUpperCase() + v.slice(1),
    ),
  );

  function show(view: View): void {
    for (const [name, el] of Object.entries(views)) el.hidden = name !== view;
    navButtons.forEach((b) => (b.id === `nav-${view}` ? b.setAttribute('aria-current', 'page') : b.removeAttribute('aria-current')));
    if (!loaded.has(view)) {
      loaded.add(view);
      if (view === 'activity') void activity.load();
      if (view === 'settings') void settings.load();
    }
  }

  document.body.replaceChildren(
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h(
      'header',
      { class: 'top' },
      h('h1', {}, 'Gleaner'),
      h('nav', { 'aria-label': 'Sections' }, ...navButtons),
    ),
    control.root,
    main,
  );

  const applyStatus = (status: Status) => {
    control.update(status);
    settings.showKey(status.publicKey);
    if (!status.onboarded && !document.getElementById('onboarding')) {
      const dialog = onboarding(bridge, () => control.root.querySelector<HTMLButtonElement>('.primary')?.focus());
      document.body.append(dialog);
      dialog.showModal();
    }
  };

  const loadStatus = async () => {
    try {
      applyStatus(await bridge.status());
    } catch (err) {
      const e = toBridgeError(err);
      control.showError(e.message, () => void loadStatus());
      settings.keyPanel.error(e, () => void loadStatus());
    }
  };
  const loadStats = async () => {
    try {
      overview.update(await bridge.stats());
    } catch (err) {
      overview.error(toBridgeError(err), () => void loadStats());
    }
  };

  void bridge.subscribe((event) => {
    if (event.kind === 'status') applyStatus(event.status);
    else if (event.kind === 'stats') overview.update(event.stats);
    else if (event.kind === 'activity' && loaded.has('activity') && !views.activity.hidden) void activity.load();
  });
  void loadStatus();
  void loadStats();
}

connect()
  .then(start)
  .catch((err: unknown) => {
    const e = toBridgeError(err);
    console.error('gleaner: start failed', err);
    document.body.replaceChildren(
      h('div', { class: 'error', role: 'alert', id: 'fatal' }, h('h1', {}, 'Gleaner could not start'), h('p', {}, `${e.message} (${e.code})`)),
    );
  });
