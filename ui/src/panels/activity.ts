// The activity log: every request made on this connection, searchable, filterable, exportable.

import { toBridgeError, type ActivityPage, type ActivityQuery, type Bridge, type PageOutcome } from '../bridge';
import { Panel, formatBytes, formatNumber, formatTime, h, humanCode } from '../dom';

/** Rows per page: enough to scan, small enough to render instantly. */
const PAGE_SIZE = 25;

const VERDICTS = ['', 'ok', 'redirect', 'failed', 'refused'] as const;
const VERDICT_LABELS: Record<(typeof VERDICTS)[number], string> = {
  '': 'All outcomes',
  ok: 'Fetched',
  redirect: 'Redirected',
  failed: 'Failed',
  refused: 'Refused (not requested)',
};

/** What a validator made of a fetched page, in words. */
function outcomeText(o: PageOutcome): string {
  switch (o.outcome) {
    case 'queued':
      return 'Awaiting receipt';
    case 'accepted':
      return `Accepted · ${formatNumber(o.points)} points`;
    case 'duplicate':
      return 'Duplicate';
    case 'rejected':
      return o.reason ? `Rejected: ${humanCode(o.reason)}` : 'Rejected';
    case 'revoked':
      return o.reason ? `Revoked: ${humanCode(o.reason)}` : 'Revoked';
  }
}

export class ActivityPanel {
  readonly panel: Panel;
  private query: ActivityQuery = { search: '', domain: '', verdict: '', offset: 0, limit: PAGE_SIZE };
  private readonly search = h('input', { type: 'search', id: 'activity-search', placeholder: 'Address or reason' });
  private readonly domain = h('select', { id: 'activity-domain' }, h('option', { value: '' }, 'All domains'));
  private readonly verdict = h(
    'select',
    { id: 'activity-verdict' },
    ...VERDICTS.map((v) => h('option', { value: v }, VERDICT_LABELS[v])),
  );
  private readonly exportMsg = h('p', { class: 'small', id: 'export-msg', role: 'status' });
  private seq = 0;
  private debounce: number | undefined;

  constructor(private readonly bridge: Bridge) {
    const exportBtn = h('button', { type: 'button', id: 'export-csv', onclick: () => this.exportCsv() }, 'Export CSV');
    this.panel = new Panel('activity', 'Activity on your connection', exportBtn);
    const filters = h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('label', {}, 'Search', this.search),
      h('label', {}, 'Domain', this.domain),
      h('label', {}, 'Outcome', this.verdict),
    );
    this.search.addEventListener('input', () => {
      window.clearTimeout(this.debounce);
      this.debounce = window.setTimeout(() => this.refilter(), 200);
    });
    this.domain.addEventListener('change', () => this.refilter());
    this.verdict.addEventListener('change', () => this.refilter());
    this.panel.root.insertBefore(
      h(
        'div',
        {},
        h('p', { class: 'muted small' }, 'Every request made on your IP address, newest first. Only GET requests to public addresses are ever made.'),
        filters,
        this.exportMsg,
      ),
      this.panel.body,
    );
  }

  private refilter(): void {
    this.query = {
      ...this.query,
      search: this.search.value,
      domain: this.domain.value,
      verdict: this.verdict.value as ActivityQuery['verdict'],
      offset: 0,
    };
    void this.load();
  }

  /** Loads the current page; a newer load wins over an older one still in flight. */
  async load(): Promise<void> {
    const seq = ++this.seq;
    if (this.panel.root.dataset.state !== 'ready') this.panel.loading();
    try {
      const page = await this.bridge.activity(this.query);
      if (seq === this.seq) this.render(page);
    } catch (err) {
      if (seq === this.seq) this.panel.error(toBridgeError(err), () => void this.load());
    }
  }

  private render(page: ActivityPage): void {
    const selected = this.domain.value;
    this.domain.replaceChildren(
      h('option', { value: '' }, 'All domains'),
      ...page.domains.map((d) => h('option', { value: d, selected: d === selected }, d)),
    );
    if (page.total === 0) {
      const filtered = this.query.search !== '' || this.query.domain !== '' || this.query.verdict !== '';
      this.panel.empty(filtered ? 'No request matches these filters.' : 'No requests yet. Every page fetched on your connection will be listed here.');
      return;
    }
    const rows = page.entries.map((e) =>
      h(
        'tr',
        { 'data-verdict': e.verdict },
        h('td', {}, formatTime(e.atMs)),
        h('td', {}, e.method),
        h('td', { class: 'url' }, h('span', { title: e.detail ? `${e.url}\n${e.detail}` : e.url }, e.url), e.robots ? h('span', { class: 'small' }, ' (robots.txt)') : null),
        h('td', { class: 'num' }, e.status ?? '—'),
        h('td', { class: 'num' }, formatBytes(e.bytes)),
        h('td', {}, h('span', { class: `verdict v-${e.verdict}` }, VERDICT_LABELS[e.verdict]), e.reason ? h('span', { class: 'small' }, ` ${humanCode(e.reason)}`) : null),
        h('td', { class: 'validator-outcome' }, e.outcome ? outcomeText(e.outcome) : '—'),
      ),
    );
    const first = this.query.offset + 1;
    const last = this.query.offset + page.entries.length;
    const pager = h(
      'div',
      { class: 'pager' },
      h('span', { id: 'activity-count' }, `${first}–${last} of ${page.total}`),
      h('button', { type: 'button', disabled: this.query.offset === 0, onclick: () => this.page(-1) }, 'Newer'),
      h('button', { type: 'button', disabled: last >= page.total, onclick: () => this.page(1) }, 'Older'),
    );
    this.panel.content(
      h(
        'div',
        { class: 'table-wrap', tabindex: 0, 'aria-label': 'Activity table' },
        h(
          'table',
          { id: 'activity-table' },
          h('thead', {}, h('tr', {}, ...['Time', 'Method', 'Address', 'HTTP', 'Size', 'Outcome', 'Validator'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, ...rows),
        ),
      ),
      pager,
    );
  }

  private page(direction: number): void {
    this.query = { ...this.query, offset: Math.max(0, this.query.offset + direction * PAGE_SIZE) };
    void this.load();
  }

  private async exportCsv(): Promise<void> {
    this.exportMsg.textContent = 'Exporting…';
    try {
      const { path, rows } = await this.bridge.exportActivity({ ...this.query, offset: 0, limit: 0 });
      this.exportMsg.textContent = `Saved ${rows} rows to ${path}`;
    } catch (err) {
      this.exportMsg.textContent = `Export failed: ${toBridgeError(err).message}`;
    }
  }
}
