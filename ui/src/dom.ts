// Small DOM and formatting helpers shared by the panels.

import type { BridgeError } from './bridge';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/** Creates an element: `h('button', { class: 'x', onclick: fn }, 'Label')`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * A titled panel with four states: loading, empty, error and content.
 * The current state is on `data-state`, for styles and tests.
 */
export class Panel {
  readonly root: HTMLElement;
  readonly body: HTMLElement;

  constructor(id: string, title: string, extra?: Node) {
    const heading = h('h2', { id: `${id}-title` }, title);
    this.body = h('div', { class: 'panel-body', 'aria-live': 'polite' });
    this.root = h(
      'section',
      { class: 'panel', id, 'aria-labelledby': `${id}-title`, 'data-state': 'loading' },
      h('header', { class: 'panel-head' }, heading, extra),
      this.body,
    );
    this.loading();
  }

  private set(state: string, ...nodes: Node[]): void {
    this.root.dataset.state = state;
    this.root.setAttribute('aria-busy', String(state === 'loading'));
    this.body.replaceChildren(...nodes);
  }

  loading(): void {
    this.set('loading', h('p', { class: 'muted loading' }, 'Loading…'));
  }

  empty(message: string): void {
    this.set('empty', h('p', { class: 'muted empty' }, message));
  }

  error(err: BridgeError, retry?: () => void): void {
    this.set(
      'error',
      h(
        'div',
        { class: 'error', role: 'alert' },
        h('p', {}, h('strong', {}, 'Could not load this. '), err.message),
        h('p', { class: 'muted' }, `Code: ${err.code}`),
        retry ? h('button', { type: 'button', onclick: () => retry() }, 'Try again') : null,
      ),
    );
  }

  content(...nodes: Node[]): void {
    this.set('ready', ...nodes);
  }
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB" (binary multiples, as bandwidth caps are set). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${UNITS[unit]}`;
}

export function formatRate(bps: number): string {
  return `${formatBytes(bps)}/s`;
}

export function formatNumber(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

/** "robots_disallowed" → "robots disallowed". */
export function humanCode(code: string): string {
  return code.replace(/_/g, ' ');
}

/** A labelled meter with text, e.g. bandwidth used against a cap. */
/** `max`: null shows "No cap set", undefined shows no bar at all. */
export function meter(label: string, value: number, max: number | null | undefined, text: string): HTMLElement {
  const id = `m-${label.replace(/\W+/g, '-').toLowerCase()}`;
  return h(
    'div',
    { class: 'meter' },
    h('div', { class: 'meter-label' }, h('span', { id }, label), h('span', { class: 'meter-text' }, text)),
    max === undefined
      ? null
      : max !== null && max > 0
        ? h('progress', { max, value: Math.min(value, max), 'aria-labelledby': id })
        : h('p', { class: 'muted small' }, 'No cap set'),
  );
}
