// The overview: bandwidth against the caps with a live chart, pages, points and validators.

import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { BridgeError, Stats, ValidatorHealth } from '../bridge';
import { Panel, formatBytes, formatNumber, formatRate, formatTime, h, humanCode, meter } from '../dom';

/** Seconds of throughput the chart keeps (one sample per stats event, about one a second). */
const CHART_WINDOW = 120;

/**
 * WebKitGTK reports the POSIX locale ("C") as `navigator.language` when LANG=C, and `Intl` rejects
 * it; libraries that format with the browser's language then throw. Fall back to English.
 */
function safeLocale(): void {
  try {
    new Intl.NumberFormat(navigator.language);
  } catch {
    Object.defineProperty(navigator, 'language', { value: 'en-US', configurable: true });
  }
}

export class Overview {
  readonly bandwidth = new Panel('bandwidth', 'Bandwidth');
  readonly pages = new Panel('pages', 'Pages');
  readonly points = new Panel('points', 'Points');
  readonly validators = new Panel('validators', 'Validators');
  readonly root = h(
    'div',
    { class: 'grid' },
    this.bandwidth.root,
    this.pages.root,
    this.points.root,
    this.validators.root,
  );

  private times: number[] = [];
  private rates: number[] = [];
  private chart: uPlot | null = null;
  private chartLoading = false;
  private chartBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'Throughput over the last two minutes' });
  private readonly figures = h('div', { class: 'figures' });

  /** What each panel shows now (its data as JSON): a push that changes nothing redraws nothing. */
  private shown: Record<'bandwidth' | 'pages' | 'points' | 'validators', string> = { bandwidth: '', pages: '', points: '', validators: '' };

  error(err: BridgeError, retry: () => void): void {
    for (const p of [this.bandwidth, this.pages, this.points, this.validators]) p.error(err, retry);
    this.shown = { bandwidth: '', pages: '', points: '', validators: '' };
  }

  /**
   * Stats arrive every second while the window is open; most of the time nothing but the chart
   * has changed. Rebuilding an unchanged panel still costs WebKit a layout and a repaint.
   */
  update(stats: Stats): void {
    this.sample(stats.bandwidth.nowBps);
    if (this.changed('bandwidth', stats.bandwidth)) this.renderBandwidth(stats);
    if (this.changed('pages', stats.pages)) this.renderPages(stats);
    if (this.changed('points', stats.points)) this.renderPoints(stats);
    if (this.changed('validators', stats.validators)) this.renderValidators(stats);
  }

  private changed(panel: keyof Overview['shown'], data: unknown): boolean {
    const json = JSON.stringify(data);
    if (json === this.shown[panel]) return false;
    this.shown[panel] = json;
    return true;
  }

  private sample(bps: number): void {
    this.times.push(Date.now() / 1000);
    this.rates.push(bps);
    if (this.times.length > CHART_WINDOW) {
      this.times.shift();
      this.rates.shift();
    }
    this.chart?.setData([this.times, this.rates]);
  }

  private renderBandwidth(stats: Stats): void {
    const b = stats.bandwidth;
    this.figures.replaceChildren(
      h('p', { class: 'big', id: 'rate-now' }, formatRate(b.nowBps)),
      h('p', { class: 'muted small' }, b.rateCapBps !== null ? `now · limit ${formatRate(b.rateCapBps)}` : 'now · no limit'),
      meter('Today', b.todayBytes, undefined, formatBytes(b.todayBytes)),
      meter(
        'This month',
        b.monthBytes,
        b.monthlyCapBytes,
        b.monthlyCapBytes !== null
          ? `${formatBytes(b.monthBytes)} of ${formatBytes(b.monthlyCapBytes)}`
          : formatBytes(b.monthBytes),
      ),
    );
    if (this.bandwidth.root.dataset.state !== 'ready') {
      this.bandwidth.content(this.figures, this.chartBox);
      void this.makeChart();
    }
  }

  /** uPlot is loaded on first use, after `safeLocale()`: it formats numbers at load time. */
  private async makeChart(): Promise<void> {
    if (this.chart || this.chartLoading) return;
    this.chartLoading = true;
    safeLocale();
    let UPlot: typeof uPlot;
    try {
      UPlot = (await import('uplot')).default;
    } catch (err) {
      this.chartBox.replaceChildren(h('p', { class: 'muted small' }, `Chart unavailable: ${String(err)}`));
      return;
    }
    const width = Math.max(260, this.chartBox.clientWidth || 320);
    this.chart = new UPlot(
      {
        width,
        height: 140,
        legend: { show: false },
        cursor: { show: false },
        series: [{}, { label: 'Throughput', stroke: '#2f7d5b', fill: 'rgba(47,125,91,0.15)', width: 2 }],
        axes: [
          {
            stroke: '#4a4a4a',
            grid: { stroke: '#e5e5e5' },
            splits: (_u, _i, _min, max) => [max - 120, max - 90, max - 60, max - 30, max],
            values: (_u, vals) => vals.map((v, i) => (i === vals.length - 1 ? 'now' : `-${Math.round(vals[vals.length - 1] - v)}s`)),
          },
          { stroke: '#4a4a4a', grid: { stroke: '#e5e5e5' }, size: 70, values: (_u, vals) => vals.map((v) => formatRate(v)) },
        ],
        scales: {
          x: { time: true, range: (_u, _min, max) => [max - CHART_WINDOW, max] },
          y: { range: (_u, _min, max) => [0, Math.max(max, 1024)] },
        },
      },
      [this.times, this.rates],
      this.chartBox,
    );
  }

  private renderPages(stats: Stats): void {
    const p = stats.pages;
    if (p.fetched === 0 && p.failed === 0) {
      this.pages.empty('No pages fetched yet. They show up here as soon as sharing starts.');
      return;
    }
    const row = (label: string, value: number, cls: string) =>
      h('div', { class: `kv ${cls}` }, h('dt', {}, label), h('dd', {}, formatNumber(value)));
    const reasons = p.reasons.length
      ? h(
          'table',
          { class: 'reasons' },
          h('caption', {}, 'Why pages were rejected or failed'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Count'))),
          h(
            'tbody',
            {},
            ...p.reasons.map((r) =>
              h('tr', {}, h('td', {}, h('code', {}, r.code), ' ', humanCode(r.code)), h('td', { class: 'num' }, formatNumber(r.count))),
            ),
          ),
        )
      : null;
    this.pages.content(
      h(
        'dl',
        { class: 'kvs' },
        row('Fetched', p.fetched, ''),
        row('Accepted', p.accepted, 'ok'),
        row('Duplicate', p.duplicate, ''),
        row('Rejected', p.rejected, 'bad'),
        ...(p.revoked > 0 ? [row('Revoked later', p.revoked, 'bad')] : []),
        row('Failed here', p.failed, 'bad'),
      ),
      ...(p.revoked > 0
        ? [
            h(
              'p',
              { class: 'muted small', id: 'pages-revoked' },
              `${formatNumber(p.revoked)} accepted ${p.revoked === 1 ? 'page was' : 'pages were'} revoked later by a validator's check (another fetch of the page disagreed, or the page was gone); their points were taken back.`,
            ),
            ...(p.revokedPages.length > 0
              ? [
                  h(
                    'ul',
                    { class: 'revoked small', id: 'pages-revoked-list', 'aria-label': 'Revoked pages, newest first' },
                    ...p.revokedPages.map((r) =>
                      h(
                        'li',
                        { title: `Validator ${r.validator}, learned ${formatTime(r.atMs)}` },
                        h('span', { class: 'url' }, r.url),
                        ' ',
                        h('span', { class: 'muted' }, `${humanCode(r.reason)} · epoch ${r.epoch} · −${formatNumber(r.points)} points`),
                      ),
                    ),
                  ),
                ]
              : []),
          ]
        : []),
      reasons ?? h('p', { class: 'muted small' }, 'Nothing rejected.'),
    );
  }

  private renderPoints(stats: Stats): void {
    const pts = stats.points;
    const totals = h(
      'dl',
      { class: 'kvs' },
      h('div', { class: 'kv ok' }, h('dt', {}, 'Credited'), h('dd', { id: 'points-credited' }, formatNumber(pts.credited))),
      ...(pts.takenBack > 0
        ? [h('div', { class: 'kv bad' }, h('dt', {}, 'Taken back'), h('dd', { id: 'points-taken-back' }, formatNumber(pts.takenBack)))]
        : []),
      h('div', { class: 'kv' }, h('dt', {}, 'Pending'), h('dd', {}, formatNumber(pts.pending))),
      h('div', { class: 'kv' }, h('dt', {}, 'Pages awaiting receipt'), h('dd', {}, formatNumber(pts.pendingRecords))),
    );
    if (pts.epochs.length === 0) {
      this.points.content(totals, h('p', { class: 'muted empty' }, 'No receipts yet: points appear once a validator has checked your first batch.'));
      return;
    }
    const epochs = pts.epochs.map((e) =>
      h(
        'details',
        { class: 'epoch' },
        h('summary', {}, `Epoch ${e.epoch} · ${formatNumber(e.points)} points · ${e.closed ? 'credited' : 'pending'}`),
        h(
          'table',
          {},
          h('caption', { class: 'sr-only' }, `Receipts for epoch ${e.epoch}`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Batch', 'Issued', 'Accepted', 'Duplicate', 'Rejected', 'Points'].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          h(
            'tbody',
            {},
            ...e.receipts.map((r) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', { title: `Validator ${r.validator}` }, r.batchId)),
                h('td', {}, formatTime(r.issuedAtMs)),
                h('td', { class: 'num' }, formatNumber(r.accepted)),
                h('td', { class: 'num' }, formatNumber(r.duplicate)),
                h('td', { class: 'num' }, formatNumber(r.rejected)),
                h('td', { class: 'num' }, formatNumber(r.points)),
              ),
            ),
          ),
        ),
      ),
    );
    this.points.content(totals, h('div', { class: 'epochs' }, ...epochs));
  }

  private renderValidators(stats: Stats): void {
    if (stats.validators.length === 0) {
      this.validators.empty('No validator configured. Add one in Settings.');
      return;
    }
    this.validators.content(
      h(
        'ul',
        { class: 'validators' },
        ...stats.validators.map((v) =>
          h(
            'li',
            {},
            h('span', { class: `dot ${validatorDot(v)}`, 'aria-hidden': 'true' }),
            h('span', {}, v.url),
            h('span', { class: 'small reach' }, reachLine(v)),
            ...suspendedLine(v),
            ...standingLine(v),
            claimLine(v),
          ),
        ),
      ),
    );
  }
}

/** The validator's dot: grey before contact, red when it fails or has suspended this node. */
function validatorDot(v: ValidatorHealth): string {
  if (!v.contacted) return 'dot-paused';
  return v.reachable && !v.suspended ? 'dot-sharing' : 'dot-error';
}

/** Whether the validator answers, and when it last did (an earlier run's answer counts). */
function reachLine(v: ValidatorHealth): string {
  const last = v.lastContactMs === null ? '' : ` · last answer ${formatTime(v.lastContactMs)}`;
  if (!v.contacted) return `not contacted yet${last}`;
  if (v.reachable) return `reachable${last}`;
  return `unreachable${v.lastError ? `: ${v.lastError}` : ''}${last}`;
}

/** The validator's suspension of this node, if it has one: the reason its operator gave. */
function suspendedLine(v: ValidatorHealth): HTMLElement[] {
  if (!v.suspended) return [];
  return [
    h(
      'span',
      { class: 'small bad suspended', role: 'alert' },
      `Suspended by this validator's operator: ${v.suspended}. It gives this node no work and takes none of its pages until the suspension is lifted.`,
    ),
  ];
}

/**
 * How far the validator trusts this node: its credibility and the cross-checks behind it, with
 * why points are low while credibility is.
 */
function standingLine(v: ValidatorHealth): HTMLElement[] {
  const s = v.standing;
  if (!s) return [];
  const checks = `${formatNumber(s.checksPassed)} cross-check${s.checksPassed === 1 ? '' : 's'} passed, ${formatNumber(s.checksFailed)} failed`;
  const low =
    s.credibility < 0.5
      ? ' Pages earn little while credibility is low: it grows each time another fetch of a page agrees with this node\'s.'
      : '';
  return [h('span', { class: 'small standing' }, `Credibility ${s.credibility.toFixed(2)} · ${checks}.${low}`)];
}

/** What the node found when it checked its reward claim with this validator. */
function claimLine(v: ValidatorHealth): HTMLElement {
  if (v.claimError) {
    return h('span', { class: 'small bad claim', role: 'alert' }, `Reward claim does not verify: ${v.claimError}`);
  }
  const c = v.claim;
  if (!c) return h('span', { class: 'small muted claim' }, 'No epoch closed yet: claims are checked once one is.');
  if (!c.leaf) {
    const checked = c.proven ? ' (every leaf of the signed root checked)' : '';
    return h('span', { class: 'small muted claim' }, `Epoch ${c.epoch}: no claim for this node yet${checked}.`);
  }
  return h(
    'span',
    { class: 'small ok claim', title: `Merkle root ${c.root}` },
    `Claimable through epoch ${c.epoch}: ${formatNumber(c.amount)} points (proof checked against the signed root)`,
  );
}
