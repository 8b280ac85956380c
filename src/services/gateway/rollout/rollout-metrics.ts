import {Gauge, type Registry} from 'prom-client';
import {BACKENDS, type RolloutController} from './controller.js';
import type {LiveSettings} from './live-settings.js';

/**
 * The rollout's gauges, read at scrape. Summed over a cluster's workers they would mean nothing:
 * the share and the generation take the lowest worker's (min), a rollback any worker's (max).
 */
export function registerRolloutMetrics(registry: Registry, controller: RolloutController, live: LiveSettings): void {
  new Gauge({
    name: 'gateway_grpc_share_percent',
    help: 'The share (0..100) of callers whose backend calls take gRPC: configured, and effective (0 after an automatic rollback).',
    labelNames: ['backend', 'kind'] as const,
    aggregator: 'min',
    registers: [registry],
    collect() {
      for (const backend of BACKENDS) {
        this.set({backend, kind: 'configured'}, controller.configuredShare());
        this.set({backend, kind: 'effective'}, controller.grpcShare(backend));
      }
    },
  });
  new Gauge({
    name: 'gateway_rollout_rolled_back',
    help: "1 while the automatic rollback holds a backend's gRPC road at 0, else 0.",
    labelNames: ['backend'] as const,
    aggregator: 'max',
    registers: [registry],
    collect() {
      for (const backend of BACKENDS) this.set({backend}, controller.rolledBack(backend) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gateway_settings_generation',
    help: 'How many times the live settings were loaded (1 at start, +1 per successful reload).',
    aggregator: 'min',
    registers: [registry],
    collect() {
      this.set(live.settingsGeneration);
    },
  });
}
