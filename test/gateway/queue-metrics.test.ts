/**
 * The queue's series on the gateway's /metrics (issue 17): queue_waiting{event_id} read from Redis
 * at scrape time, queue_admissions_total{event_id} counted where the queue admits, and a scrape
 * while Redis is down still answering (queue_waiting then absent).
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startCli, type LongRunningCli} from '../helpers/cli.js';
import {postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {fetchJson} from '../helpers/http.js';
import {parseMetrics} from '../helpers/metrics.js';
import {disposeRedis, freePort, startRedis, type RedisProcess} from '../helpers/redis.js';

const CROWDED = 'evt_metrics_crowded';
const QUIET = 'evt_metrics_quiet';

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  redis = await startRedis();
  // Development: a join to an unknown event id opens it.
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    LOG_LEVEL: 'warn',
  });
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await disposeRedis(redis);
});

/** The value of one series of /metrics by event, or undefined when the scrape has none. */
async function scrape(base = gateway!.http): Promise<(name: string, eventId: string) => number | undefined> {
  const answer = await fetchJson(`${base}/metrics`);
  expect(answer.status, answer.text).toBe(200);
  const samples = parseMetrics(answer.text);
  return (name, eventId) => samples.find((s) => s.name === name && s.labels.event_id === eventId)?.value;
}

async function join(eventId: string, base = gateway!.http): Promise<string> {
  const joined = await postJson(`${base}/api/v1/queue/join`, {event_id: eventId});
  expect(joined.status, JSON.stringify(joined.body)).toBe(202);
  return joined.body.waiting_token as string;
}

describe('queue series on /metrics', () => {
  const crowd: string[] = [];

  it('queue_waiting shows the people waiting per event, read from Redis at scrape', async () => {
    const before = await scrape();
    expect(before('queue_waiting', CROWDED)).toBeUndefined();
    for (let i = 0; i < 3; i++) crowd.push(await join(CROWDED));
    await join(QUIET);
    const after = await scrape();
    expect(after('queue_waiting', CROWDED)).toBe(3);
    expect(after('queue_waiting', QUIET)).toBe(1);
    expect(after('queue_admissions_total', CROWDED)).toBeUndefined();
  });

  it('admissions move queue_admissions_total of their event, and leave the waiting count', async () => {
    for (const token of crowd.slice(0, 2)) {
      const entered = await postJson(`${gateway!.http}/api/v1/queue/enter`, {waiting_token: token});
      expect(entered.status, JSON.stringify(entered.body)).toBe(200);
      expect(entered.body.reservation_token).toEqual(expect.any(String));
    }
    // Refused: an admitted token entering again is not an admission.
    const again = await postJson(`${gateway!.http}/api/v1/queue/enter`, {waiting_token: crowd[0]});
    expect(again.status).toBeGreaterThanOrEqual(400);
    const after = await scrape();
    expect(after('queue_admissions_total', CROWDED)).toBe(2);
    expect(after('queue_admissions_total', QUIET)).toBeUndefined();
    expect(after('queue_waiting', CROWDED)).toBe(1);
    expect(after('queue_waiting', QUIET)).toBe(1);
  });

  it('a scrape while Redis is down answers: queue_waiting absent, the admissions counter kept', async () => {
    await redis!.stop(true);
    const during = await scrape();
    expect(during('queue_waiting', CROWDED)).toBeUndefined();
    expect(during('queue_waiting', QUIET)).toBeUndefined();
    expect(during('queue_admissions_total', CROWDED)).toBe(2);

    await redis!.restart();
    await waitForReady(gateway!, 15_000);
    await join('evt_metrics_after_outage');
    expect((await scrape())('queue_waiting', 'evt_metrics_after_outage')).toBe(1);
  });
});

// Build first (npm run build): this runs bin/run.js.
describe('queue series with --workers 2', {timeout: 60_000}, () => {
  let cli: LongRunningCli | undefined;
  let project: string | undefined;

  afterAll(async () => {
    // The primary's workers exit at once when it goes, even on SIGKILL.
    cli?.kill();
    if (project) await rm(project, {recursive: true, force: true});
  });

  it('every worker reads the same Redis: queue_waiting is that count (max), admissions are summed', async () => {
    project = await mkdtemp(path.join(tmpdir(), 'tacos-queue-metrics-'));
    cli = startCli(['serve', 'gateway', '--workers', '2'], {
      cwd: project,
      env: {
        REDIS_ADDRESS: redis!.address,
        SERVER_PORT: String(await freePort()),
        SERVER_ENVIRONMENT: 'development',
        LOG_LEVEL: 'info',
      },
    });
    const ready = await cli.waitForLine((line) => line.msg === 'gateway workers listening', 30_000);
    const base = String(ready.http);
    const event = 'evt_metrics_cluster';
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) tokens.push(await join(event, base));
    const entered = await postJson(`${base}/api/v1/queue/enter`, {waiting_token: tokens[0]});
    expect(entered.status, JSON.stringify(entered.body)).toBe(200);

    // Any worker answers for all; a sum over two workers would say 4.
    const read = await scrape(base);
    expect(read('queue_waiting', event)).toBe(2);
    expect(read('queue_admissions_total', event)).toBe(1);

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});
