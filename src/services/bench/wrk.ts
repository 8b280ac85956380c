import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {usageError} from '../errors.js';
import type {Engine} from './engine.js';
import {requireTool, runTool, toolFailure, withTempDir, type ToolRun} from './external-tool.js';
import {runShape} from './options.js';
import {cpuLoad, perSecond, type RunResult} from './results.js';
import {fillTemplate, type HttpRequestSpec} from './scenarios.js';

/** Every wrk request sends the same body: its joins are all made as one user. */
const WRK_SEQUENCE = 'wrk';
const RESULT_MARK = 'TACOS_WRK ';

/** A Lua string literal (our values are printable ASCII, where JSON's escapes are Lua's). */
function luaString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error(`wrk script: not printable ASCII: ${text}`);
  return JSON.stringify(text);
}

/**
 * The request, a per-thread share of --max-requests (a thread stops when it has its answers), the
 * answers counted by status, and a done() that prints the figures as one JSON line.
 */
function wrkScript(request: HttpRequestSpec, maxRequests: number, threads: number): string {
  const headers = Object.entries(request.headers).map(
    ([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`,
  );
  const body =
    request.bodyTemplate === undefined
      ? []
      : [`wrk.body = ${luaString(fillTemplate(request.bodyTemplate, WRK_SEQUENCE))}`];
  return `wrk.method = ${luaString(request.method)}
${[...body, ...headers].join('\n')}
local max_requests, thread_count = ${maxRequests}, ${threads}
local threads, started = {}, 0
function setup(thread)
  local share = math.floor(max_requests / thread_count)
  if started < max_requests % thread_count then share = share + 1 end
  thread:set("limit", share)
  started = started + 1
  table.insert(threads, thread)
end
answered = 0
statuses = {}
function response(status, headers, body)
  -- Answers still in flight when the thread stops are not counted: --max-requests is a ceiling.
  if answered >= limit then return end
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if answered >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do totals[status] = (totals[status] or 0) + count end
  end
  local parts, counted = {}, 0
  for status, count in pairs(totals) do
    table.insert(parts, string.format('"%d":%d', status, count))
    counted = counted + count
  end
  local e = summary.errors
  io.write(string.format('${RESULT_MARK}{"requests":%d,"durationUs":%d,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f,"connect":%d,"read":%d,"write":%d,"timeout":%d,"statuses":{%s}}\\n',
    counted, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ',')))
end
`;
}

interface WrkFigures {
  requests: number;
  durationUs: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  statuses: Record<string, number>;
}

function figuresOf(run: ToolRun): WrkFigures | undefined {
  const line = run.stdout.split('\n').find((text) => text.startsWith(RESULT_MARK));
  return line ? (JSON.parse(line.slice(RESULT_MARK.length)) as WrkFigures) : undefined;
}

const wholeSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** wrk: HTTP/1.1 only, so REST only. It counts time in whole seconds and has no warm-up: a short run before is one. */
export const runWrk: Engine = async (plan, {options, signal, progress}) => {
  const wrk = requireTool('wrk');
  const request = plan.request;
  if (request.kind !== 'http') throw usageError('wrk has no gRPC.', 'Use --engine h2load for gRPC.');
  const shape = runShape(options, 'http');
  // wrk gives each thread connections / threads of them.
  const connections = Math.floor(shape.connections / shape.threads) * shape.threads;
  return withTempDir(async (dir) => {
    const script = path.join(dir, 'bench.lua');
    await writeFile(script, wrkScript(request, options.maxRequests, shape.threads));
    const durationS = wholeSeconds(options.durationMs);
    const run = (seconds: number, label: string, warmupMs: number) =>
      runTool(
        wrk,
        [
          '-t',
          String(shape.threads),
          '-c',
          String(connections),
          '-d',
          `${seconds}s`,
          '--timeout',
          `${wholeSeconds(options.timeoutMs)}s`,
          '-s',
          script,
          `${request.origin}${request.path}`,
        ],
        {expectedMs: seconds * 1000, timeoutMs: options.timeoutMs, warmupMs, signal, progress, label},
      );
    if (options.warmupMs > 0) await run(wholeSeconds(options.warmupMs), plan.label, Infinity);
    const measured = signal.aborted ? undefined : await run(durationS, plan.label, 0);
    const figures = measured && figuresOf(measured);
    if (measured && !figures && !measured.interrupted) {
      throw toolFailure('wrk', measured);
    }
    const notes = ['wrk: latencies of every answer, errors included.'];
    if (request.bodyTemplate !== undefined)
      notes.push('wrk sends the same body every time: every join is the same user.');
    if (durationS * 1000 !== options.durationMs) notes.push(`wrk counts whole seconds: it ran ${durationS}s.`);
    if (options.warmupMs > 0) notes.push(`warm-up: a separate wrk run of ${wholeSeconds(options.warmupMs)}s.`);
    const errors: Record<string, number> = {};
    for (const [status, count] of Object.entries(figures?.statuses ?? {}))
      if (status !== String(request.okStatus)) errors[status] = count;
    for (const kind of ['connect', 'read', 'write', 'timeout'] as const)
      if (figures?.[kind]) errors[kind.toUpperCase()] = figures[kind];
    const ok = figures?.statuses[String(request.okStatus)] ?? 0;
    const durationMs = figures ? figures.durationUs / 1000 : 0;
    const ms = (us: number) => us / 1000;
    return {
      label: plan.label,
      protocol: plan.protocol,
      engine: 'wrk',
      shape: {...shape, connections, concurrency: connections},
      durationMs,
      requests: figures?.requests ?? 0,
      ok,
      requestsPerSecond: perSecond(ok, durationMs),
      latencyMs:
        figures && figures.requests > 0
          ? {
              p50: ms(figures.p50),
              p90: ms(figures.p90),
              p99: ms(figures.p99),
              max: ms(figures.max),
              mean: ms(figures.mean),
            }
          : null,
      errors,
      generator: {...cpuLoad(measured?.cpuMicros ?? null, durationMs), eventLoopUtilization: []},
      notes,
      interrupted: signal.aborted,
    } satisfies RunResult;
  });
};
