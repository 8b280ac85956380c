import {createColors} from 'colorette';
import type {BenchReport} from './bench.js';
import {formatMs} from './options.js';
import type {RunResult} from './results.js';

export const count = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});

export function milliseconds(value: number | undefined): string {
  if (value === undefined) return '-';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : count.format(value);
}

export function percent(value: number | null): string {
  return value === null ? '?' : `${Math.round(value)}%`;
}

export function errorList(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort(([, a], [, b]) => b - a);
  return entries.length === 0 ? '-' : entries.map(([code, n]) => `${code}: ${count.format(n)}`).join(', ');
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: string[][], rightAligned: boolean[]): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1
          ? cell
          : rightAligned[column]
            ? cell.padStart(widths[column])
            : cell.padEnd(widths[column]),
      )
      .join('  ');
  return [line(header), ...rows.map(line)];
}

function runRow(run: RunResult): string[] {
  const latency = run.latencyMs ?? undefined;
  return [
    run.label,
    run.engine,
    String(run.shape.connections),
    String(run.shape.concurrency),
    count.format(run.requests),
    count.format(run.requestsPerSecond),
    milliseconds(latency?.p50),
    milliseconds(latency?.p90),
    milliseconds(latency?.p99),
    milliseconds(latency?.max),
    errorList(run.errors),
  ];
}

function generatorLine(run: RunResult): string {
  const {cpuPercentOfCore, cpuPercentOfMachine, eventLoopUtilization} = run.generator;
  const threads = `${run.shape.threads} thread${run.shape.threads === 1 ? '' : 's'}`;
  const loops =
    eventLoopUtilization.length > 0
      ? `, event loop${eventLoopUtilization.length === 1 ? '' : 's'} ${eventLoopUtilization.map((u) => percent(u * 100)).join(' ')} busy`
      : '';
  return `generator, ${run.label}: ${threads}, CPU ${percent(cpuPercentOfCore)} of one core (${percent(cpuPercentOfMachine)} of the machine)${loops}`;
}

const ROAD_NAMES: Record<string, string> = {grpc: 'gRPC', http: 'HTTP', 'grpc,http': 'both'};

/** How many measured answers came over each road, as the gateway said (x-tacos-backend-road); null when it said nothing. */
function roadsLine(run: RunResult): string | null {
  const entries = Object.entries(run.roads ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return null;
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const shares = entries.map(
    ([road, n]) => `${ROAD_NAMES[road] ?? road} ${count.format(n)} (${Math.round((n / total) * 100)}%)`,
  );
  return `roads, ${run.label}: ${shares.join(', ')}`;
}

function ratioText(value: number | null): string {
  return value === null ? '-' : `${value.toFixed(2)}x`;
}

/** The report for people: the targets, a row per run, the gRPC / HTTP ratio, what the generator cost, and caveats. */
export function formatReport(report: BenchReport, color: boolean): string {
  const paint = createColors({useColor: color});
  const {options} = report;
  const targets = [`REST ${report.targets.http}`, ...(report.targets.grpc ? [`gRPC ${report.targets.grpc}`] : [])].join(
    ', ',
  );
  const event = report.eventId ? `, event ${report.eventId}` : '';
  const users = options.users > 1 ? `, ${count.format(options.users)} users` : '';
  const lines = [
    paint.bold(
      `${report.scenario}: ${formatMs(options.durationMs)} per run after ${formatMs(options.warmupMs)} of warm-up, at most ${count.format(options.maxRequests)} requests${event}${users}; ${targets}`,
    ),
    '',
    ...table(
      ['run', 'engine', 'conns', 'in flight', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors'],
      report.runs.map(runRow),
      [false, false, true, true, true, true, true, true, true, true, false],
    ),
    paint.dim('req/s and latencies count OK answers; requests counts every answer while measuring.'),
    '',
  ];
  if (report.ratio) {
    const {requestsPerSecond, p50, p99} = report.ratio;
    lines.push(
      paint.bold(
        `gRPC / HTTP: ${ratioText(requestsPerSecond)} requests/s, p50 ${ratioText(p50)}, p99 ${ratioText(p99)}`,
      ),
    );
  }
  lines.push(...report.runs.flatMap((run) => roadsLine(run) ?? []));
  lines.push(...report.runs.map(generatorLine));
  for (const run of report.runs) lines.push(...run.notes.map((note) => paint.dim(`note, ${run.label}: ${note}`)));
  lines.push(...report.warnings.map((warning) => paint.yellow(`warning: ${warning}`)));
  if (report.interrupted)
    lines.push(paint.yellow('Stopped early (Ctrl-C): the figures cover what was measured until then.'));
  return lines.join('\n');
}
