/**
 * The k6 load script's flow (test/fixtures/contracts/REST.md 2.5) replayed at small scale against `tacos up` as a user starts
 * it (run `npm run build` first): 20 virtual users x 2 iterations, each join -> status x3 -> enter
 * with the script's headers (a shared dev bearer, X-Load-Test, its User-Agent) and its non-UUID
 * idempotency keys (`join_<VU>_<ITER>_<ms>`), the raw token in the status query, sleeps shortened.
 * Asserted like the script's checks and thresholds: every join 202 with a waiting_token, status 200
 * on a healthy stack, enter failure rate < 0.3, and no fallback token anywhere.
 */
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {fetchJson} from '../helpers/http.js';
import {createProject, type Project} from '../helpers/up-project.js';

const VIRTUAL_USERS = 20;
const ITERATIONS = 2;

const K6_HEADERS = {
  'Content-Type': 'application/json',
  Authorization: 'Bearer dev-super-key-local-testing',
  'X-Load-Test': 'true',
  'User-Agent': 'k6-load-test/1.0',
};

let project: Project | undefined;
let api = '';

beforeAll(async () => {
  // The stack's defaults, as `tacos up` runs them: with 100 events for 20 users a token is almost
  // always within QUEUE_INSTANT_ADMISSION_POSITIONS (10) of its event and enters at once, like the
  // script's (slower) iterations would; the rate limit is off in development.
  project = await createProject();
  const started = await project.run(['up', '--detach'], {timeoutMs: 60_000});
  expect(started.code, started.stdout + started.stderr).toBe(0);
  api = `http://127.0.0.1:${project.ports.server}`;
}, 90_000);

afterAll(async () => {
  await project?.dispose();
}, 60_000);

interface Answer {
  status: number;
  body: any;
}

async function send(
  method: 'GET' | 'POST',
  route: string,
  options: {key?: string; body?: unknown; timeoutMs: number},
): Promise<Answer> {
  const headers: Record<string, string> = {...K6_HEADERS};
  if (options.key) headers['Idempotency-Key'] = options.key;
  const answer = await fetchJson(`${api}${route}`, {method, headers, body: options.body, timeoutMs: options.timeoutMs});
  return {status: answer.status, body: answer.json === undefined ? answer.text : answer.json};
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The token at top level or under `data`, as the script's check reads it. */
function waitingTokenOf(body: any): string | undefined {
  return body?.waiting_token ?? body?.data?.waiting_token;
}

interface Iteration {
  join: Answer;
  statuses: Answer[];
  enter?: Answer;
}

/** One iteration of the script's default function (sleeps of 1-3 s / 2 s / 1 s shortened to 50-150 ms). */
async function iteration(vu: number, iter: number): Promise<Iteration> {
  const eventId = `evt_loadtest_${Math.floor(Math.random() * 100)}`;
  const join = await send('POST', '/api/v1/queue/join', {
    key: `join_${vu}_${iter}_${Date.now()}`,
    body: {event_id: eventId, user_id: `user_${vu}_${iter}`},
    timeoutMs: 5000,
  });
  const token = waitingTokenOf(join.body);
  await sleep(50 + Math.random() * 100);
  const statuses: Answer[] = [];
  for (let poll = 0; poll < 3; poll++) {
    // The raw token, not URL-encoded, like the script.
    statuses.push(await send('GET', `/api/v1/queue/status?token=${token}`, {timeoutMs: 3000}));
    await sleep(100);
  }
  const enter = await send('POST', '/api/v1/queue/enter', {
    key: `enter_${vu}_${iter}_${Date.now()}`,
    body: {waiting_token: token},
    timeoutMs: 5000,
  });
  await sleep(50);
  return {join, statuses, enter};
}

describe('the k6 script flow at small scale', {timeout: 120_000}, () => {
  it(`${VIRTUAL_USERS} virtual users x ${ITERATIONS} iterations: every join 202 with a waiting_token, status 200, enter failures under 30 %`, async () => {
    const runs = await Promise.all(
      Array.from({length: VIRTUAL_USERS}, async (_, index) => {
        const vu = index + 1;
        const done: Iteration[] = [];
        for (let iter = 0; iter < ITERATIONS; iter++) done.push(await iteration(vu, iter));
        return done;
      }),
    );
    const iterations = runs.flat();
    expect(iterations).toHaveLength(VIRTUAL_USERS * ITERATIONS);

    for (const {join} of iterations) {
      expect(join.status, JSON.stringify(join.body)).toBe(202);
      expect(waitingTokenOf(join.body), JSON.stringify(join.body)).toEqual(expect.any(String));
      expect(waitingTokenOf(join.body)).not.toMatch(/fallback/);
    }
    // k6's check passes on 200 or 404; on a healthy stack every poll of a fresh token is 200.
    for (const status of iterations.flatMap((run) => run.statuses)) {
      expect([200, 404], JSON.stringify(status.body)).toContain(status.status);
      expect(status.status, JSON.stringify(status.body)).toBe(200);
      expect(status.body).toMatchObject({
        status: 'waiting',
        position: expect.any(Number),
        ready_for_entry: expect.any(Boolean),
      });
    }
    const enterFailures = iterations.filter(({enter}) => enter!.status !== 200 && enter!.status !== 201);
    const failureRate = enterFailures.length / iterations.length;
    expect(failureRate, `enter failures: ${JSON.stringify(enterFailures.map(({enter}) => enter))}`).toBeLessThan(0.3);
    for (const {enter} of iterations.filter(({enter}) => enter!.status === 200 || enter!.status === 201)) {
      expect(enter!.body).toMatchObject({reservation_token: expect.any(String), ttl_sec: expect.any(Number)});
    }
  });
});
