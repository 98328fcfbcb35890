// The one door between the dashboard and the outside world.
//
// Every call into Tauri goes through this module; nothing else imports `@tauri-apps/api`.
// In a plain browser (development, the Chromium tests) a fake bridge with canned data stands in,
// loaded lazily so it stays out of the app's main chunk.

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

/** What the node is doing, as the tray icon shows it. */
export type NodeState = 'sharing' | 'paused' | 'capped' | 'offline' | 'error';

export interface Status {
  state: NodeState;
  /** Why the node is in that state, in plain words ("Monthly cap reached", …), if it matters. */
  detail: string | null;
  /** Set when paused for a while: unix ms at which sharing resumes by itself. */
  pausedUntilMs: number | null;
  /** The node's public key (base58). */
  publicKey: string;
  /** False until the user has been through the first-run onboarding. */
  onboarded: boolean;
}

export interface Bandwidth {
  /** Current throughput, bytes per second. */
  nowBps: number;
  todayBytes: number;
  monthBytes: number;
  /** Rate cap, bytes per second (null: none). */
  rateCapBps: number | null;
  /** Monthly cap, bytes (null: none). */
  monthlyCapBytes: number | null;
}

export interface ReasonCount {
  /** Stable snake_case reason code, e.g. `robots_disallowed`. */
  code: string;
  count: number;
}

export interface Pages {
  fetched: number;
  accepted: number;
  duplicate: number;
  rejected: number;
  /** Accepted, then revoked by a validator's later check (counted in `accepted` too). */
  revoked: number;
  /** Fetches that failed on this machine (robots, timeouts, …) — never submitted. */
  failed: number;
  reasons: ReasonCount[];
  /** The newest revoked pages, as read from the validators' revocation logs (newest first). */
  revokedPages: RevokedPage[];
}

export interface RevokedPage {
  url: string;
  /** The validator's reason code, e.g. `failed_cross_check`, `page_not_found`. */
  reason: string;
  /** The epoch the page was credited in. */
  epoch: number;
  /** Points its receipt credited, taken back (0 when this install holds no such receipt). */
  points: number;
  /** When the node learned of it. */
  atMs: number;
  validator: string;
}

export interface ReceiptSummary {
  batchId: string;
  validator: string;
  issuedAtMs: number;
  accepted: number;
  duplicate: number;
  rejected: number;
  points: number;
}

export interface EpochPoints {
  epoch: number;
  /** True once the epoch is closed and its points are final. */
  closed: boolean;
  points: number;
  receipts: ReceiptSummary[];
}

export interface Points {
  credited: number;
  /** Of `credited`, the points of pages revoked since. */
  takenBack: number;
  /** Points the validators report as pending in the open epoch. */
  pending: number;
  /** Records sent or queued without a receipt yet. */
  pendingRecords: number;
  /** Per-epoch receipts, when the node reports them (empty otherwise). */
  epochs: EpochPoints[];
}

export interface ValidatorHealth {
  url: string;
  /** Whether this run has heard from it (an answer or a failure); before that `reachable` means nothing. */
  contacted: boolean;
  reachable: boolean;
  lastError: string | null;
  lastContactMs: number | null;
  /** This node's claim in the validator's newest closed epoch, checked against its signed root. */
  claim: ClaimCheck | null;
  /** Why the claim did not verify (`code: message`). */
  claimError: string | null;
  /** Why the validator's operator suspended this node, while it is suspended. */
  suspended: string | null;
  /** This node's standing with the validator, from its last answer; null before one. */
  standing: Standing | null;
}

export interface Standing {
  /** In [0, 1]: a new node starts at 0 and rises as cross-checks pass; points grow steeply with it. */
  credibility: number;
  /** Cross-checks that found this node's fetches right, and wrong. */
  checksPassed: number;
  checksFailed: number;
}

export interface ClaimCheck {
  epoch: number;
  /** Cumulative points claimable through `epoch`. */
  amount: number;
  /** True when `amount` was verified against the signed root (by the leaf's proof, or with no leaf by every published leaf); false only for a missing leaf taken on the validator's word. */
  proven: boolean;
  /** Whether the epoch's tree holds a leaf for this node. */
  leaf: boolean;
  root: string;
}

export interface Stats {
  bandwidth: Bandwidth;
  pages: Pages;
  points: Points;
  validators: ValidatorHealth[];
}

/** ok: fetched; redirect: the next hop is its own entry; refused: blocked before any connection. */
export type ActivityVerdict = 'ok' | 'redirect' | 'refused' | 'failed';

/** One request this machine made (or refused to make). */
export interface ActivityEntry {
  id: number;
  atMs: number;
  /** "GET", or "—" when no request was made. */
  method: string;
  url: string;
  domain: string;
  /** A robots.txt request. */
  robots: boolean;
  status: number | null;
  bytes: number;
  verdict: ActivityVerdict;
  /** Reason code for refused/failed entries, e.g. `robots_disallowed`. */
  reason: string | null;
  detail: string;
  /** For a page fetched: what became of its record (null when no stored record carries its URL). */
  outcome: PageOutcome | null;
}

/** What became of a fetched page's record. */
export interface PageOutcome {
  outcome: 'queued' | 'accepted' | 'duplicate' | 'rejected' | 'revoked';
  /** The receipt's or the revocation's reason code. */
  reason: string | null;
  /** Points credited (0 once revoked). */
  points: number;
}

export interface ActivityQuery {
  search: string;
  domain: string;
  verdict: ActivityVerdict | '';
  offset: number;
  limit: number;
}

export interface ActivityPage {
  entries: ActivityEntry[];
  /** Matching entries in all (for paging). */
  total: number;
  /** Every domain in the log, for the filter. */
  domains: string[];
}

export interface Schedule {
  /** "HH:MM", local time. */
  start: string;
  end: string;
  /** Local time minus UTC, in minutes. */
  utcOffsetMinutes: number;
}

export interface Settings {
  validators: string[];
  /** Bytes per second; null: no rate cap. */
  rateCapBps: number | null;
  /** Bytes per month; null: no monthly cap. */
  monthlyCapBytes: number | null;
  /** Share only inside this window; null: any time. */
  schedule: Schedule | null;
  idleOnly: boolean;
  pauseOnMetered: boolean;
  /** Domains never fetched, whatever a validator asks. */
  blocklist: string[];
  payoutAddress: string | null;
  startAtLogin: boolean;
  notifications: boolean;
}

export interface ExportResult {
  /** Where the CSV file was written. */
  path: string;
  rows: number;
}

/** An error from the app: a stable code and a message for people. */
export interface BridgeError {
  code: string;
  message: string;
}

export type BridgeEvent =
  | { kind: 'status'; status: Status }
  | { kind: 'stats'; stats: Stats }
  | { kind: 'activity' };

export interface Bridge {
  status(): Promise<Status>;
  stats(): Promise<Stats>;
  pause(): Promise<Status>;
  pauseFor(minutes: number): Promise<Status>;
  resume(): Promise<Status>;
  activity(query: ActivityQuery): Promise<ActivityPage>;
  exportActivity(query: ActivityQuery): Promise<ExportResult>;
  settings(): Promise<Settings>;
  updateSettings(settings: Settings): Promise<Settings>;
  completeOnboarding(): Promise<Status>;
  exportKey(): Promise<string>;
  /** Subscribe to pushed updates; returns the unsubscribe function. */
  subscribe(listener: (event: BridgeEvent) => void): Promise<() => void>;
}

/** Turns whatever a call threw into a `BridgeError`. */
export function toBridgeError(err: unknown): BridgeError {
  if (err && typeof err === 'object' && 'code' in err && 'message' in err) {
    const e = err as { code: unknown; message: unknown };
    return { code: String(e.code), message: String(e.message) };
  }
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}

/** Event names the Rust side emits (keep in sync with src-tauri/src/events.rs). */
export const EVENTS = {
  status: 'gleaner://status',
  stats: 'gleaner://stats',
  activity: 'gleaner://activity',
} as const;

function tauriBridge(): Bridge {
  const call = async <T>(cmd: string, args?: Record<string, unknown>): Promise<T> => {
    try {
      return await invoke<T>(cmd, args);
    } catch (err) {
      throw toBridgeError(err);
    }
  };
  return {
    status: () => call('status'),
    stats: () => call('stats'),
    pause: () => call('pause'),
    pauseFor: (minutes) => call('pause_for', { minutes }),
    resume: () => call('resume'),
    activity: (query) => call('activity', { query }),
    exportActivity: (query) => call('export_activity', { query }),
    settings: () => call('settings'),
    updateSettings: (settings) => call('update_settings', { settings }),
    completeOnboarding: () => call('complete_onboarding'),
    exportKey: () => call('export_key'),
    async subscribe(listener) {
      const offs = await Promise.all([
        listen<Status>(EVENTS.status, (e) => listener({ kind: 'status', status: e.payload })),
        listen<Stats>(EVENTS.stats, (e) => listener({ kind: 'stats', stats: e.payload })),
        listen(EVENTS.activity, () => listener({ kind: 'activity' })),
      ]);
      return () => offs.forEach((off) => off());
    },
  };
}

/** The bridge for this environment: Tauri inside the app, the fake in a plain browser. */
export async function connect(): Promise<Bridge> {
  if ('__TAURI_INTERNALS__' in window) return tauriBridge();
  const { FakeBridge, scenarioFromUrl } = await import('./fake-bridge');
  const fake = new FakeBridge(
    scenarioFromUrl(window.location.search),
    new URLSearchParams(window.location.search).get('live') === '1',
  );
  (window as unknown as { __gleanerFake: unknown }).__gleanerFake = fake;
  return fake;
}
