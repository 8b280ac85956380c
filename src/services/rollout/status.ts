import {createRolloutAdminToken} from './admin-token.js';
import {rolloutRequest, type RolloutStatus} from './gateway-status.js';

/** POST /api/v1/rollout/reset: clears the gateway's automatic rollback; answers the status. */
export async function resetRollout(gateway: string, envName: string | undefined): Promise<RolloutStatus> {
  const token = await createRolloutAdminToken(envName);
  return rolloutRequest(gateway, '/api/v1/rollout/reset', {
    method: 'POST',
    headers: {authorization: `Bearer ${token}`},
    signal: AbortSignal.timeout(5000),
  });
}

const pct = (rate: number) => `${(rate * 100).toFixed(1)}%`;
const ms = (value: number) => `${Math.round(value)}ms`;

/** The status as text: the settings, then per backend its shares, rollback and window figures. */
export function statusText(status: RolloutStatus): string {
  const {settings} = status;
  const lines = [
    `gateway pid ${status.pid}${status.workers.length ? ` (workers ${status.workers.join(', ')})` : ''}, ${settings.env_file ?? 'no env file'}, generation ${settings.generation} loaded ${settings.loaded_at}`,
    `GRPC_ENABLED=${settings.grpc_enabled} GRPC_TRAFFIC_PERCENT=${settings.grpc_traffic_percent}`,
  ];
  if (settings.fixed_by_process_env.length)
    lines.push(`fixed by the process environment: ${settings.fixed_by_process_env.join(', ')}`);
  if (settings.restart_needed.length)
    lines.push(`changed in the file, needs a restart: ${settings.restart_needed.join(', ')}`);
  if (settings.last_error) lines.push(`last reload refused: ${settings.last_error}`);
  lines.push(
    `window ${status.thresholds.window_seconds}s, automatic rollback ${status.thresholds.auto_rollback ? 'on' : 'off'}`,
  );
  lines.push('backend      configured effective  road  calls   errors  p50     p99');
  for (const [name, backend] of Object.entries(status.backends)) {
    for (const road of ['grpc', 'http'] as const) {
      const figures = backend.window[road];
      lines.push(
        [
          (road === 'grpc' ? name : '').padEnd(12),
          (road === 'grpc' ? `${backend.configured_percent}%` : '').padEnd(10),
          (road === 'grpc' ? `${backend.effective_percent}%` : '').padEnd(10),
          road.padEnd(5),
          String(figures.calls).padEnd(7),
          pct(figures.error_rate).padEnd(7),
          ms(figures.p50_ms).padEnd(7),
          ms(figures.p99_ms),
        ].join(' '),
      );
    }
    if (backend.rolled_back)
      lines.push(
        `  rolled back at ${backend.rolled_back.at} (${backend.rolled_back.failed}): ${backend.rolled_back.detail}`,
      );
  }
  return lines.join('\n');
}
