// A stand-in for the Tauri side, with canned data: used in a plain browser and by the UI tests.
// Pick a scenario with `?scenario=NAME` in the page URL (see `Scenario`).

import type {
  ActivityEntry,
  ActivityPage,
  ActivityQuery,
  Bridge,
  BridgeError,
  BridgeEvent,
  ExportResult,
  PageOutcome,
  Settings,
  Stats,
  Status,
} from './bridge';

/**
 * - `default`: sharing, with history.
 * - `empty`: onboarded, but nothing fetched yet.
 * - `firstrun`: `empty`, and the onboarding has not been seen.
 * - `paused`, `capped`, `offline`: that state, with history.
 * - `suspended`: sharing, but the validator's operator has suspended this node.
 * - `error`: every call fails.
 * - `loading`: no call ever answers.
 */
export type Scenario =
  | 'default'
  | 'empty'
  | 'firstrun'
  | 'paused'
  | 'capped'
  | 'offline'
  | 'suspended'
  | 'error'
  | 'loading';

const SCENARIOS: readonly Scenario[] = [
  'default',
  'empty',
  'firstrun',
  'paused',
  'capped',
  'offline',
  'suspended',
  'error',
  'loading',
];

export function scenarioFromUrl(search: string): Scenario {
  const name = new URLSearchParams(search).get('scenario') ?? 'default';
  return (SCENARIOS as readonly string[]).includes(name) ? (name as Scenario) : 'default';
}

const MB = 1024 * 1024;
const NOW = Date.UTC(2026, 10, 24, 18, 0, 0);
const KEY = '7Hq3bJp4u2aVfN1xZkR9mYc5tLwE8sD6oGiUe3rQnB2';

const DOMAINS = ['en.wikipedia.org', 'docs.python.org', 'www.gutenberg.org', 'blog.rust-lang.org', 'example.org'];
const VERDICTS: ActivityEntry['verdict'][] = ['ok', 'ok', 'ok', 'redirect', 'ok', 'failed', 'refused'];
const REASONS: Record<string, string | null> = {
  ok: null,
  redirect: null,
  refused: 'blocked_domain',
  failed: 'robots_disallowed',
};

const OUTCOMES: PageOutcome[] = [
  { outcome: 'accepted', reason: 'ok', points: 12 },
  { outcome: 'queued', reason: null, points: 0 },
  { outcome: 'duplicate', reason: 'near_duplicate', points: 0 },
  { outcome: 'rejected', reason: 'gopher_word_count', points: 0 },
  { outcome: 'revoked', reason: 'page_not_found', points: 0 },
];

function makeActivity(count: number): ActivityEntry[] {
  const out: ActivityEntry[] = [];
  for (let i = 0; i < count; i++) {
    const domain = DOMAINS[i % DOMAINS.length];
    const verdict = VERDICTS[i % VERDICTS.length];
    out.push({
      id: count - i,
      atMs: NOW - i * 37_000,
      method: verdict === 'refused' ? '—' : 'GET',
      url: `https://${domain}/page/${count - i}`,
      domain,
      robots: false,
      status: verdict === 'failed' || verdict === 'refused' ? null : verdict === 'redirect' ? 301 : 200,
      bytes: verdict === 'refused' ? 0 : 20_000 + ((i * 7919) % 180_000),
      verdict,
      reason: REASONS[verdict],
      detail: verdict === 'failed' ? 'Disallow: /page/' : '',
      outcome: verdict === 'ok' ? OUTCOMES[i % OUTCOMES.length] : null,
    });
  }
  return out;
}

function makeStatus(scenario: Scenario): Status {
  const state =
    scenario === 'paused' ? 'paused' : scenario === 'capped' ? 'capped' : scenario === 'offline' ? 'offline' : 'sharing';
  const detail =
    scenario === 'capped'
      ? 'Monthly cap of 20 GB reached; sharing resumes on the 1st.'
      : scenario === 'offline'
        ? 'No validator answered for 5 minutes.'
        : null;
  return {
    state,
    detail,
    pausedUntilMs: null,
    publicKey: KEY,
    onboarded: scenario !== 'firstrun',
  };
}

function makeStats(scenario: Scenario): Stats {
  const empty = scenario === 'empty' || scenario === 'firstrun';
  return {
    bandwidth: {
      nowBps: empty || scenario === 'paused' || scenario === 'capped' ? 0 : 412_000,
      todayBytes: empty ? 0 : 734 * MB,
      monthBytes: empty ? 0 : scenario === 'capped' ? 20_480 * MB : 9_210 * MB,
      rateCapBps: 2 * MB,
      monthlyCapBytes: 20_480 * MB,
    },
    pages: empty
      ? { fetched: 0, accepted: 0, duplicate: 0, rejected: 0, revoked: 0, failed: 0, reasons: [], revokedPages: [] }
      : {
          fetched: 1_284,
          accepted: 1_093,
          duplicate: 88,
          rejected: 61,
          revoked: 3,
          failed: 42,
          reasons: [
            { code: 'gopher_word_count', count: 37 },
            { code: 'robots_disallowed', count: 30 },
            { code: 'content_mismatch', count: 24 },
            { code: 'timeout', count: 12 },
          ],
          revokedPages: [
            {
              url: 'https://news.example.org/2026/11/storm-update',
              reason: 'page_not_found',
              epoch: 42,
              points: 14,
              atMs: NOW - 3_600_000,
              validator: 'https://validator.example.net',
            },
            {
              url: 'https://blog.example.com/recipes/bread',
              reason: 'failed_cross_check',
              epoch: 41,
              points: 9,
              atMs: NOW - 86_400_000,
              validator: 'https://validator.example.net',
            },
          ],
        },
    points: empty
      ? { credited: 0, takenBack: 0, pending: 0, pendingRecords: 0, epochs: [] }
      : {
          credited: 10_930,
          takenBack: 23,
          pending: 412,
          pendingRecords: 37,
          epochs: [
            {
              epoch: 42,
              closed: false,
              points: 412,
              receipts: [
                {
                  batchId: 'b3f1c09a7d2e',
                  validator: 'https://validator-1.gleaner.example',
                  issuedAtMs: NOW - 600_000,
                  accepted: 41,
                  duplicate: 3,
                  rejected: 2,
                  points: 412,
                },
              ],
            },
            {
              epoch: 41,
              closed: true,
              points: 5_210,
              receipts: [
                {
                  batchId: '9ac4e5f01b77',
                  validator: 'https://validator-1.gleaner.example',
                  issuedAtMs: NOW - 86_400_000,
                  accepted: 520,
                  duplicate: 40,
                  rejected: 30,
                  points: 5_210,
                },
              ],
            },
          ],
        },
    validators: [
      {
        url: 'https://validator-1.gleaner.example',
        // 'empty': a fresh start that has not reached the validator yet (an earlier run had).
        contacted: !empty,
        reachable: scenario !== 'offline' && !empty,
        lastError: scenario === 'offline' ? 'connection refused' : null,
        lastContactMs: scenario === 'firstrun' ? null : NOW - 30_000,
        claim: empty ? null : { epoch: 41, amount: 9_812, proven: true, leaf: true, root: '3557' + '5eb5b45a18ec9a82de76392d41ca5172'.repeat(2).slice(0, 60) },
        claimError: null,
        suspended: scenario === 'suspended' ? 'pages fetched far faster than robots.txt allows' : null,
        standing: empty
          ? null
          : scenario === 'suspended'
            ? { credibility: 0.08, checksPassed: 2, checksFailed: 1 }
            : { credibility: 0.86, checksPassed: 57, checksFailed: 1 },
      },
    ],
  };
}

function defaultSettings(): Settings {
  return {
    validators: ['https://validator-1.gleaner.example'],
    rateCapBps: 2 * MB,
    monthlyCapBytes: 20_480 * MB,
    schedule: null,
    idleOnly: false,
    pauseOnMetered: true,
    blocklist: ['facebook.com'],
    payoutAddress: null,
    startAtLogin: false,
    notifications: true,
  };
}

const FAILURE: BridgeError = { code: 'node_unavailable', message: 'The node library could not be reached.' };

/** The fake bridge. Tests reach it as `window.__gleanerFake`. */
export class FakeBridge implements Bridge {
  /** Every call made, by name, for tests. */
  readonly calls: string[] = [];
  /** The last CSV export, for tests. */
  lastExport: string | null = null;
  private statusValue: Status;
  private statsValue: Stats;
  private settingsValue: Settings = defaultSettings();
  private log: ActivityEntry[];
  private listeners = new Set<(event: BridgeEvent) => void>();
  private ticker: number | undefined;

  /** `live`: push a throughput sample every 250 ms while sharing (`?live=1`). */
  constructor(
    private readonly scenario: Scenario,
    private readonly live = false,
  ) {
    this.statusValue = makeStatus(scenario);
    this.statsValue = makeStats(scenario);
    this.log = scenario === 'empty' || scenario === 'firstrun' ? [] : makeActivity(60);
  }

  private answer<T>(name: string, value: () => T): Promise<T> {
    this.calls.push(name);
    if (this.scenario === 'error') return Promise.reject({ ...FAILURE });
    if (this.scenario === 'loading') return new Promise<T>(() => {});
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(structuredClone(value()));
        } catch (err) {
          reject(err);
        }
      }, 20),
    );
  }

  /** Pushes an event to the subscribers, as the Rust side would. */
  emit(event: BridgeEvent): void {
    this.listeners.forEach((l) => l(event));
  }

  private setState(state: Status['state'], pausedUntilMs: number | null): Status {
    this.statusValue = { ...this.statusValue, state, pausedUntilMs, detail: null };
    this.emit({ kind: 'status', status: structuredClone(this.statusValue) });
    return this.statusValue;
  }

  status = () => this.answer('status', () => this.statusValue);
  stats = () => this.answer('stats', () => this.statsValue);
  pause = () => this.answer('pause', () => this.setState('paused', null));
  pauseFor = (minutes: number) =>
    this.answer('pauseFor', () => this.setState('paused', Date.now() + minutes * 60_000));
  resume = () => this.answer('resume', () => this.setState('sharing', null));
  completeOnboarding = () =>
    this.answer('completeOnboarding', () => {
      this.statusValue = { ...this.statusValue, onboarded: true };
      return this.statusValue;
    });
  exportKey = () => this.answer('exportKey', () => 'gleaner-secret-key-v1:4f2a9c…fake…e81b');
  settings = () => this.answer('settings', () => this.settingsValue);
  updateSettings = (settings: Settings) =>
    this.answer('updateSettings', () => {
      const bad = settings.validators.find((v) => !/^https?:\/\//.test(v));
      if (bad !== undefined) {
        throw { code: 'invalid_settings', message: `Validator address must start with https://: ${bad}` };
      }
      this.settingsValue = structuredClone(settings);
      return this.settingsValue;
    });

  private filter(q: ActivityQuery): ActivityEntry[] {
    const needle = q.search.trim().toLowerCase();
    return this.log.filter(
      (e) =>
        (q.domain === '' || e.domain === q.domain) &&
        (q.verdict === '' || e.verdict === q.verdict) &&
        (needle === '' || e.url.toLowerCase().includes(needle) || (e.reason ?? '').includes(needle)),
    );
  }

  activity = (q: ActivityQuery) =>
    this.answer<ActivityPage>('activity', () => {
      const all = this.filter(q);
      return {
        entries: all.slice(q.offset, q.offset + q.limit),
        total: all.length,
        domains: [...new Set(this.log.map((e) => e.domain))].sort(),
      };
    });

  exportActivity = (q: ActivityQuery) =>
    this.answer<ExportResult>('exportActivity', () => {
      const rows = this.filter(q);
      this.lastExport = [
        'time,method,url,status,bytes,verdict,reason',
        ...rows.map((e) =>
          [new Date(e.atMs).toISOString(), e.method, e.url, e.status ?? '', e.bytes, e.verdict, e.reason ?? ''].join(','),
        ),
      ].join('\n');
      return { path: '/home/user/Downloads/gleaner-activity.csv', rows: rows.length };
    });

  subscribe = async (listener: (event: BridgeEvent) => void) => {
    this.calls.push('subscribe');
    this.listeners.add(listener);
    if (this.live && this.ticker === undefined && this.statusValue.state === 'sharing' && this.statsValue.pages.fetched > 0) {
      // Live throughput, as the app pushes it about once a second.
      let tick = 0;
      this.ticker = window.setInterval(() => {
        if (this.statusValue.state !== 'sharing') return;
        tick++;
        const wave = 300_000 + 180_000 * Math.sin(tick / 4) + ((tick * 7919) % 90_000);
        this.statsValue = { ...this.statsValue, bandwidth: { ...this.statsValue.bandwidth, nowBps: Math.round(wave) } };
        this.emit({ kind: 'stats', stats: structuredClone(this.statsValue) });
      }, 250);
    }
    return () => {
      this.listeners.delete(listener);
    };
  };
}
