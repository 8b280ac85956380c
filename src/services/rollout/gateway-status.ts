import {TacosError, errorMessage, usageError} from '../errors.js';
import type {RolloutStatus} from '../gateway/rollout/status.js';

/** GET /api/v1/rollout's answer, typed by the gateway that serves it. */
export type {RolloutStatus} from '../gateway/rollout/status.js';
/** A road's totals since the gateway started: calls per ROAD_BUCKETS_MS bucket (not cumulative). */
export type {RoadCounts as RoadTotals} from '../gateway/rollout/road-window.js';

export const ROLLOUT_PATH = '/api/v1/rollout';

/** A gateway without the route: another program, or a gateway of an older tacos. */
export const NOT_A_TACOS_GATEWAY = 'NOT_A_TACOS_GATEWAY';
export const GATEWAY_UNREACHABLE = 'GATEWAY_UNREACHABLE';

/** What the rollout reads of the running stack's state (tacos up's state.json, read by the command). */
export interface RunningStack {
  env: string;
  services: Array<{name: string; urls: string[]}>;
}

/** The HTTP address of the running stack's gateway and its environment, or undefined. */
export function stackGateway(stack: RunningStack | undefined): {env: string; url: string} | undefined {
  const url = stack?.services
    .find((service) => service.name === 'gateway')
    ?.urls.find((candidate) => candidate.startsWith('http://'));
  return stack && url ? {env: stack.env, url} : undefined;
}

/**
 * The HTTP address of the gateway to watch: --url, else the gateway of the stack running here
 * (`tacos up`) when it runs that environment; a clear error when there is none.
 */
export function requireGateway(options: {url?: string; envName?: string; stack?: RunningStack}): string {
  if (options.url) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw usageError(`--url ${options.url} is not a URL such as http://127.0.0.1:8000.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw usageError(`--url ${options.url} is not an http(s) URL such as http://127.0.0.1:8000.`);
    return url.origin;
  }
  const env = options.envName ?? 'local';
  const running = stackGateway(options.stack);
  if (running && running.env === env) return running.url;
  throw new TacosError(`No gateway of the environment ${env} is running here.`, {
    hint: `Start it with \`tacos up --env ${env}\`, or point at a gateway with --url http://127.0.0.1:8000.`,
    code: 'NO_GATEWAY',
  });
}

/** Reads the rollout status; unreachable and route-less gateways become TacosErrors with their code. */
export async function readRolloutStatus(gateway: string, timeoutMs = 2000): Promise<RolloutStatus> {
  return rolloutRequest(gateway, ROLLOUT_PATH, {signal: AbortSignal.timeout(timeoutMs)});
}

export async function rolloutRequest(gateway: string, route: string, init: RequestInit): Promise<RolloutStatus> {
  let response: Response;
  try {
    response = await fetch(`${gateway}${route}`, init);
  } catch (error) {
    throw new TacosError(`The gateway at ${gateway} does not answer (${errorMessage(error)}).`, {
      hint: 'Is it running? `tacos status` shows the stack.',
      code: GATEWAY_UNREACHABLE,
    });
  }
  if (response.status === 404) {
    throw new TacosError(`${gateway} has no ${ROLLOUT_PATH} route: it is not a tacos gateway (or an older one).`, {
      hint: 'The rollout needs the gateway of `tacos up` (not a --gateway-cmd of your own).',
      code: NOT_A_TACOS_GATEWAY,
    });
  }
  const body = await response.text();
  if (!response.ok) {
    throw new TacosError(`The gateway at ${gateway} answered ${response.status} to ${route}.`, {
      hint: body.slice(0, 200),
      code: 'GATEWAY_REFUSED',
    });
  }
  try {
    return JSON.parse(body) as RolloutStatus;
  } catch {
    throw new TacosError(`The gateway at ${gateway} answered ${route} with something other than JSON.`, {
      code: NOT_A_TACOS_GATEWAY,
    });
  }
}
