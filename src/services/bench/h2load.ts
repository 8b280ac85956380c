import {createReadStream, existsSync} from 'node:fs';
import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {createHistogram} from 'node:perf_hooks';
import {createInterface} from 'node:readline';
import type {Engine} from './engine.js';
import {requireTool, runTool, toolFailure, withTempDir} from './external-tool.js';
import {grpcRequestFrames} from './load-client.js';
import {runShape} from './options.js';
import {cpuLoad, latencyFromHistogram, perSecond, type RunResult} from './results.js';
import {fillTemplate} from './scenarios.js';

/** Every h2load request sends the same body: its joins are all made as one user. */
const H2LOAD_SEQUENCE = 'h2load';

/**
 * h2load (nghttp2): HTTP/2 with many streams per connection for gRPC, HTTP/1.1 (--h1) for REST.
 * Timed with its own -D and --warm-up-time; figures from its per-request log (start µs, status,
 * µs to the end of the response).
 */
export const runH2load: Engine = async (plan, {options, contracts, signal, progress}) => {
  const h2load = requireTool('h2load');
  const request = plan.request;
  const shape = runShape(options, request.kind);
  // HTTP/1.1 carries one request at a time; HTTP/2 gets the requests in flight as streams.
  const streams = request.kind === 'grpc' ? Math.ceil(shape.concurrency / shape.connections) : 1;
  const concurrency = shape.connections * streams;
  return withTempDir(async (dir) => {
    const log = path.join(dir, 'requests.tsv');
    const args = [
      '-D',
      `${options.durationMs}ms`,
      '-c',
      String(shape.connections),
      '-m',
      String(streams),
      '-t',
      String(shape.threads),
      '--log-file',
      log,
    ];
    if (options.warmupMs > 0) args.push('--warm-up-time', `${options.warmupMs}ms`);
    let url: string;
    let okStatus: number;
    if (request.kind === 'grpc') {
      const body = path.join(dir, 'request.bin');
      await writeFile(body, grpcRequestFrames(contracts.registry, request)(H2LOAD_SEQUENCE));
      args.push('-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
      url = `http://${request.address}${request.path}`;
      okStatus = 200;
    } else {
      args.push('--h1');
      if (request.bodyTemplate !== undefined) {
        const body = path.join(dir, 'request.json');
        await writeFile(body, fillTemplate(request.bodyTemplate, H2LOAD_SEQUENCE));
        args.push('-d', body);
      }
      for (const [name, value] of Object.entries(request.headers)) args.push('-H', `${name}: ${value}`);
      url = `${request.origin}${request.path}`;
      okStatus = request.okStatus;
    }
    args.push(url);
    const run = await runTool(h2load, args, {
      expectedMs: options.warmupMs + options.durationMs,
      timeoutMs: options.timeoutMs,
      warmupMs: options.warmupMs,
      signal,
      progress,
      label: plan.label,
    });
    if (run.code !== 0 && !run.interrupted) {
      throw toolFailure('h2load', run);
    }
    const figures = await readLog(log, okStatus);
    const notes: string[] = [];
    if (request.kind === 'grpc')
      notes.push(
        'h2load sees HTTP statuses only: a gRPC error inside a 200 counts as OK (the check before the load made sure the method answers OK).',
      );
    if (request.kind === 'grpc' || request.bodyTemplate !== undefined)
      notes.push('h2load sends the same body every time: every join is the same user.');
    if (figures.unfinished > 0)
      notes.push(`${figures.unfinished} requests still in flight at the end are not counted.`);
    const durationMs = options.durationMs;
    return {
      label: plan.label,
      protocol: plan.protocol,
      engine: 'h2load',
      shape: {...shape, concurrency},
      durationMs,
      requests: figures.requests,
      ok: figures.ok,
      requestsPerSecond: perSecond(figures.ok, durationMs),
      latencyMs: latencyFromHistogram(figures.histogram),
      errors: figures.errors,
      generator: {...cpuLoad(run.cpuMicros, options.warmupMs + durationMs), eventLoopUtilization: []},
      notes,
      interrupted: run.interrupted,
    } satisfies RunResult;
  });
};

/** Reads h2load's log: status 0 is a request cut off at the end of the run, -1 a failed stream. */
async function readLog(file: string, okStatus: number) {
  const histogram = createHistogram();
  const errors: Record<string, number> = {};
  let requests = 0;
  let ok = 0;
  let unfinished = 0;
  // No log when h2load was stopped (Ctrl-C) before it wrote one.
  const lines = existsSync(file) ? createInterface({input: createReadStream(file), crlfDelay: Infinity}) : [];
  for await (const line of lines) {
    const [, statusText, elapsedText] = line.split('\t');
    if (elapsedText === undefined) continue;
    const status = Number(statusText);
    if (status === 0) {
      unfinished++;
      continue;
    }
    requests++;
    if (status === okStatus) {
      ok++;
      histogram.record(Math.max(1, Number(elapsedText) * 1000));
    } else {
      const code = status === -1 ? 'STREAM_FAILED' : String(status);
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
  return {histogram, errors, requests, ok, unfinished};
}
