/**
 * `tacos bench --scenario waiting-room`: 50 people waiting on a real gateway and Redis follow their
 * place by polling, WebSocket and SSE while the head is admitted; each way reports its figures.
 * Shape only: speed is for BENCHMARKS.md.
 */
import {afterAll, beforeAll, expect, it} from 'vitest';
import type {WaitingRoomReport, WaitingRoomRun} from '../../src/services/bench/waiting-room.js';
import {runCli} from '../helpers/cli.js';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {expectOrderedLatencies} from './figures.js';

const PEOPLE = 50;
let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  redis = await startRedis();
  // The head may enter at once: the run does not wait out the default minimum wait of 5 s.
  gateway = await startTestGateway({REDIS_ADDRESS: redis.address, LOG_LEVEL: 'warn', QUEUE_ADMISSION_MIN_WAIT: '0'});
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await disposeRedis(redis);
});

function expectFiguresOf(run: WaitingRoomRun | undefined, label: string): void {
  expect(run?.label, JSON.stringify(run)).toBe(label);
  expect(run!.subscribers).toEqual({asked: PEOPLE, connected: PEOPLE, failures: {}});
  expect(run!.admissions).toBeGreaterThan(0);
  // The gateway runs in this test's process, found by its port in /proc.
  expect(run!.gateway.cpuPercentOfCore).toBeGreaterThanOrEqual(0);
  expect(run!.gateway.cpuMicrosPerPersonSecond).toBeGreaterThanOrEqual(0);
  expect(run!.gateway.rssConnectedBytes).toBeGreaterThan(0);
  expect(typeof run!.gateway.bytesPerSubscriber).toBe('number');
  expect(run!.redis.cpuPercentOfCore).toBeGreaterThanOrEqual(0);
  // Every admission reached every person before the end, each seen once per person.
  expect(run!.delivery.reachedEveryone).toBe(run!.admissions);
  expectOrderedLatencies(run!.delivery.perSubscriberMs!);
  expectOrderedLatencies(run!.delivery.everyoneMs!);
  expect(run!.delivery.messages).toBeGreaterThan(0);
  expect(run!.delivery.lost).toEqual({});
  expect(run!.interrupted).toBe(false);
}

/** `tacos bench --scenario waiting-room` at the test's gateway and Redis, with more flags. */
function benchWaitingRoom(flags: string[], timeoutMs = 60_000) {
  return runCli(
    ['bench', '--scenario', 'waiting-room', '--http-url', gateway!.http, '--redis-addr', redis!.address, ...flags],
    {timeoutMs},
  );
}

it('follows 50 people by polling, WebSocket and SSE while the head is admitted, and reports each way', async () => {
  const result = await benchWaitingRoom(
    ['--users', String(PEOPLE), '--duration', '2s', '--admit-rate', '2', '--json'],
    90_000,
  );
  expect(result.code, result.stderr).toBe(0);
  const report = JSON.parse(result.stdout) as WaitingRoomReport;
  expect(report.gatewayPid).toBe(process.pid);
  expect(report.runs.map((run) => run.mode)).toEqual(['poll', 'ws', 'sse']);
  expectFiguresOf(report.runs[0], 'polling status every 2 s');
  expectFiguresOf(report.runs[1], 'WebSocket');
  expectFiguresOf(report.runs[2], 'Server-Sent Events');
  expect(Object.keys(report.pushCpuOverPolling).sort()).toEqual(['sse', 'ws']);
}, 120_000);

it('prints one row per way in the text report', async () => {
  const result = await benchWaitingRoom(['--mode', 'ws', '--users', '10', '--duration', '1s']);
  expect(result.code, result.stderr).toBe(0);
  const row = result.stdout.split('\n').find((line) => line.startsWith('WebSocket  '));
  expect(row, result.stdout).toBeDefined();
  expect(row!.split(/\s{2,}/)[1]).toBe('10/10');
}, 90_000);

it('refuses an admission rate out of range and a Redis off this machine (exit 2), before any join', async () => {
  const rate = await benchWaitingRoom(['--admit-rate', '1000']);
  expect(rate.code).toBe(2);
  expect(rate.stderr).toContain('--admit-rate 1000 is out of range');
  const remote = await runCli([
    'bench',
    '--scenario',
    'waiting-room',
    '--http-url',
    gateway!.http,
    '--redis-addr',
    '10.1.2.3:6379',
  ]);
  expect(remote.code).toBe(2);
  expect(remote.stderr).toContain('10.1.2.3:6379 is not on this machine');
}, 60_000);
