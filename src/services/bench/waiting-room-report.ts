import {createColors} from 'colorette';
import {formatMs} from './options.js';
import {count, errorList, milliseconds, percent, table} from './report.js';
import type {WaitingRoomReport, WaitingRoomRun} from './waiting-room.js';

/** The goal of the issue: push costs at most a tenth of the gateway CPU that 2 s polling costs. */
const PUSH_CPU_GOAL = 0.1;

function kilobytes(bytes: number | null): string {
  return bytes === null ? '?' : (bytes / 1024).toFixed(1);
}

function megabytes(bytes: number | null): string {
  return bytes === null ? '?' : (bytes / 1024 / 1024).toFixed(0);
}

function runRow(run: WaitingRoomRun): string[] {
  const {gateway, delivery} = run;
  return [
    run.label,
    `${count.format(run.subscribers.connected)}/${count.format(run.subscribers.asked)}`,
    count.format(run.admissions),
    percent(gateway.cpuPercentOfCore),
    gateway.cpuMicrosPerPersonSecond === null ? '?' : gateway.cpuMicrosPerPersonSecond.toFixed(1),
    percent(run.redis.cpuPercentOfCore),
    megabytes(gateway.rssConnectedBytes),
    kilobytes(gateway.bytesPerSubscriber),
    milliseconds(delivery.perSubscriberMs?.p50),
    milliseconds(delivery.perSubscriberMs?.p99),
    milliseconds(delivery.everyoneMs?.p50),
    milliseconds(delivery.everyoneMs?.p99),
    `${count.format(delivery.reachedEveryone)}/${count.format(run.admissions)}`,
  ];
}

const HEADER = [
  'way',
  'people',
  'admitted',
  'gw CPU',
  'gw CPU µs/person/s',
  'Redis CPU',
  'gw RSS MB',
  'KB/person',
  'update p50 ms',
  'p99',
  'all p50 ms',
  'p99',
  'reached all',
];

/** The report for people: a row per way, push's CPU against polling's, and what each run's subscribers and generator met. */
export function formatWaitingRoomReport(report: WaitingRoomReport, color: boolean): string {
  const paint = createColors({useColor: color});
  const {options} = report;
  const lines = [
    paint.bold(
      `waiting-room: ${count.format(options.users)} people per way, ${formatMs(options.durationMs)} measured, ${options.admitRatePerSecond} admissions/s at the head; gateway ${report.targets.http} (pid ${report.gatewayPid ?? '?'}), Redis ${report.targets.redis ?? '-'}`,
    ),
    '',
    ...table(
      HEADER,
      report.runs.map(runRow),
      HEADER.map((_, column) => column > 0),
    ),
    paint.dim(
      'gw CPU: gateway CPU in % of one core (/proc); KB/person: RSS growth once everyone had a first position, per person; update: admission to one person seeing the new position; all: admission to the last person seeing it.',
    ),
    '',
  ];
  for (const [mode, ratio] of Object.entries(report.pushCpuOverPolling)) {
    const label = report.runs.find((run) => run.mode === mode)?.label ?? mode;
    const verdict = ratio <= PUSH_CPU_GOAL ? paint.green('within') : paint.yellow('above');
    lines.push(
      paint.bold(`${label} / polling, gateway CPU: ${ratio.toFixed(3)}x (${verdict} the goal of ${PUSH_CPU_GOAL}x)`),
    );
  }
  for (const run of report.runs) {
    const {subscribers, delivery, generator} = run;
    const problems = [
      Object.keys(subscribers.failures).length > 0 ? `refused or failed: ${errorList(subscribers.failures)}` : '',
      Object.keys(delivery.lost).length > 0 ? `lost while measuring: ${errorList(delivery.lost)}` : '',
      Object.keys(run.admissionErrors).length > 0 ? `enter not granted: ${errorList(run.admissionErrors)}` : '',
    ].filter(Boolean);
    lines.push(
      `${run.label}: ${count.format(delivery.messages)} ${run.mode === 'poll' ? 'status answers' : 'messages'} while measuring; generator CPU ${percent(generator.cpuPercentOfCore)} of one core, event loops ${generator.eventLoopUtilization.map((u) => percent(u * 100)).join(' ')} busy${problems.length > 0 ? `; ${problems.join('; ')}` : ''}`,
    );
    lines.push(...run.notes.map((note) => paint.dim(`note, ${run.label}: ${note}`)));
  }
  lines.push(...report.warnings.map((warning) => paint.yellow(`warning: ${warning}`)));
  if (report.interrupted)
    lines.push(paint.yellow('Stopped early (Ctrl-C): the figures cover what was measured until then.'));
  return lines.join('\n');
}
