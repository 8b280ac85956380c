import type {Logger} from '../../logging.js';
import type {RoadPolicy} from '../../backends/road-policy.js';
import type {Protocol} from '../../backends/transports.js';
import {figuresFromBuckets, judgeRoads, type RoadFigures} from './judge.js';
import {RoadWindow, type RoadsCounts} from './road-window.js';
import type {RolloutSettings} from './settings.js';

export const BACKENDS = ['reservation', 'payment'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** How often each backend's window is judged. */
const EVALUATE_EVERY_MS = 1000;

export interface Rollback {
  at: string;
  failed: 'errors' | 'p99';
  detail: string;
  grpc: RoadFigures;
  http: RoadFigures;
}

/** One backend as this process sees it (summed over workers by status.ts). */
export interface BackendSnapshot {
  configuredPercent: number;
  effectivePercent: number;
  rolledBack: Rollback | null;
  window: RoadsCounts;
  totals: RoadsCounts;
}

/** A change of a backend's rollback: set (a rollback) or null (cleared). */
export type RollbackChange = {backend: BackendName; rollback: Rollback | null};

export function figuresOf(roads: RoadsCounts): {grpc: RoadFigures; http: RoadFigures} {
  return {
    grpc: figuresFromBuckets(roads.grpc.buckets, roads.grpc.failures),
    http: figuresFromBuckets(roads.http.buckets, roads.http.failures),
  };
}

function isBackend(name: string): name is BackendName {
  return (BACKENDS as readonly string[]).includes(name);
}

/**
 * The gateway's RoadPolicy: the gRPC share of each backend's calls from the live settings, unless
 * the automatic rollback took it back to 0 because the gRPC road did worse than the HTTP one over
 * the window (judge.ts). A rollback stays until a reset or a reload that moves the share.
 */
export class RolloutController implements RoadPolicy {
  private readonly windows: Map<BackendName, RoadWindow>;
  private readonly rollbacks = new Map<BackendName, Rollback>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * `onLocalChange`: a rollback this process decided or cleared (reset, reload), which a cluster
   * worker passes to the others; changes made through `setRollback` are not passed on.
   */
  constructor(
    private currentSettings: RolloutSettings,
    private readonly logger: Logger,
    private readonly onLocalChange: (change: RollbackChange) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.windows = new Map(BACKENDS.map((name) => [name, new RoadWindow(now)]));
  }

  get settings(): RolloutSettings {
    return this.currentSettings;
  }

  configuredShare(): number {
    return this.currentSettings.grpcEnabled ? this.currentSettings.grpcTrafficPercent : 0;
  }

  grpcShare(backend: string): number {
    return isBackend(backend) && this.rolledBack(backend) ? 0 : this.configuredShare();
  }

  rolledBack(backend: BackendName): boolean {
    return this.rollbacks.has(backend);
  }

  record(backend: string, protocol: Protocol, failed: boolean, seconds: number): void {
    if (isBackend(backend)) this.windows.get(backend)!.record(protocol, failed, seconds);
  }

  /** New live settings: the next call sees them. An operator moving the share clears the rollbacks. */
  apply(settings: RolloutSettings): void {
    const moved =
      settings.grpcEnabled !== this.currentSettings.grpcEnabled ||
      settings.grpcTrafficPercent !== this.currentSettings.grpcTrafficPercent;
    this.currentSettings = settings;
    if (moved) this.clearAll();
  }

  /** Clears every automatic rollback (POST /api/v1/rollout/reset). */
  reset(): void {
    this.clearAll();
  }

  /** A rollback decided or cleared elsewhere (another cluster worker). */
  setRollback(change: RollbackChange): void {
    if (change.rollback) this.rollbacks.set(change.backend, change.rollback);
    else this.clear(change.backend);
  }

  /** Judges every backend's window now: a gRPC road doing worse than the thresholds allow is rolled back. */
  evaluate(): void {
    const {thresholds} = this.currentSettings;
    if (!thresholds.autoRollback || this.configuredShare() === 0) return;
    for (const backend of BACKENDS) {
      if (this.rollbacks.has(backend)) continue;
      const figures = figuresOf(this.windows.get(backend)!.window(thresholds.windowSeconds));
      const judgement = judgeRoads(figures.grpc, figures.http, thresholds);
      if (judgement.healthy) continue;
      const rollback: Rollback = {
        at: new Date(this.now()).toISOString(),
        failed: judgement.failed!,
        detail: judgement.detail,
        ...figures,
      };
      this.rollbacks.set(backend, rollback);
      this.logger.warn(
        {backend, failed: rollback.failed, detail: rollback.detail, grpc: rollback.grpc, http: rollback.http},
        'grpc road rolled back',
      );
      this.onLocalChange({backend, rollback});
    }
  }

  snapshot(): Record<BackendName, BackendSnapshot> {
    const configured = this.configuredShare();
    const entry = (backend: BackendName): BackendSnapshot => {
      const window = this.windows.get(backend)!;
      return {
        configuredPercent: configured,
        effectivePercent: this.grpcShare(backend),
        rolledBack: this.rollbacks.get(backend) ?? null,
        window: window.window(this.currentSettings.thresholds.windowSeconds),
        totals: window.totals(),
      };
    };
    return {reservation: entry('reservation'), payment: entry('payment')};
  }

  /** Judges every second until `close`; the timer does not hold the process. */
  start(): void {
    this.timer ??= setInterval(() => this.evaluate(), EVALUATE_EVERY_MS).unref();
  }

  /** Safe to call twice. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private clearAll(): void {
    for (const backend of [...this.rollbacks.keys()]) {
      this.clear(backend);
      this.logger.info({backend}, 'grpc road rollback cleared');
      this.onLocalChange({backend, rollback: null});
    }
  }

  private clear(backend: BackendName): void {
    this.rollbacks.delete(backend);
    // Judged again on calls made with the share back, not on those that caused the rollback.
    this.windows.get(backend)!.clearWindow();
  }
}
