import type {Registry} from '@bufbuild/protobuf';
import {TacosError} from '../errors.js';
import {createLoadClient, type Outcome} from './load-client.js';
import type {RunPlan} from './scenarios.js';

/** The check's own deadline: a dead target should be named quickly, not after the load's timeout. */
const CHECK_TIMEOUT_MS = 5000;

/**
 * One real request per run before any load, which must answer OK: external engines count an HTTP
 * 200 as success even when the gRPC status says otherwise, and a bench against a target that
 * refuses everything measures nothing.
 */
export async function checkTargets(plans: RunPlan[], registry: Registry, timeoutMs: number): Promise<string[]> {
  const notices: string[] = [];
  for (const plan of plans) {
    const client = createLoadClient(plan.request, 1, Math.min(timeoutMs, CHECK_TIMEOUT_MS), registry);
    try {
      const outcome = await client.send('check', 0, true);
      if (!outcome.ok) {
        throw new TacosError(
          `${plan.label}: ${targetOf(plan)} answered ${outcome.code}${describe(outcome.detail)} (expected ${expected(plan)}).`,
          {
            hint: hintFor(plan, outcome),
            code: 'BENCH_TARGET',
          },
        );
      }
      if (outcome.rateLimit !== undefined)
        notices.push(
          `${plan.label}: ${targetOf(plan)} limits each client to ${outcome.rateLimit} requests per second, so this run measures the limit (429s), not the gateway. ${RATE_LIMIT_HINT}`,
        );
    } finally {
      client.close();
    }
  }
  return notices;
}

const RATE_LIMIT_HINT =
  "Bench with RATE_LIMIT_ENABLED=false in the stack's env file (then restart it), or from behind a proxy listed in TRUSTED_PROXIES.";

/** The gateway's error envelope as `CODE: message`; other answers as they came. */
function describe(detail: string | undefined): string {
  if (!detail?.trim()) return '';
  try {
    const {error} = JSON.parse(detail) as {error?: {code?: string; message?: string}};
    if (error?.code && error.message) return ` ${error.code}: ${error.message}`;
  } catch {
    // Not JSON: shown as it is.
  }
  return `: ${detail.trim()}`;
}

function targetOf(plan: RunPlan): string {
  const request = plan.request;
  return request.kind === 'http'
    ? `${request.method} ${request.origin}${request.path}`
    : `${request.address}${request.path}`;
}

function expected(plan: RunPlan): string {
  return plan.request.kind === 'http' ? String(plan.request.okStatus) : 'OK';
}

function hintFor(plan: RunPlan, outcome: Outcome): string {
  const request = plan.request;
  if (request.kind === 'grpc') {
    return outcome.code === 'UNAVAILABLE'
      ? 'Is the stack running (tacos up) with GRPC_ENABLED=true? The gateway serves gRPC only then (tacos env switch grpc). Or point --grpc-addr at it.'
      : 'Check the gateway (tacos status, tacos logs gateway).';
  }
  if (!/^\d+$/.test(outcome.code))
    return 'Is the stack running? Start it with tacos up, or point --http-url at the gateway.';
  if (plan.protocol === 'grpc' && outcome.code === '400')
    return 'The gateway calls its backends over gRPC only with GRPC_ENABLED=true (tacos env switch grpc); or bench --protocol http.';
  if (outcome.code === '429') return `The gateway's per-client rate limit refused the check. ${RATE_LIMIT_HINT}`;
  if (outcome.code === '401')
    return 'The gateway refused the development token: bench with the --env of the running stack (the same JWT_SECRET).';
  if (outcome.code === '503' || outcome.code === '504')
    return 'A part of the stack behind the gateway is not answering: check tacos status.';
  return 'Check the gateway (tacos status, tacos logs gateway).';
}
