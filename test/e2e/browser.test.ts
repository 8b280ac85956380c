/**
 * The real web client's flow (test/fixtures/contracts/REST.md 2.1/2.2) in a real headless Chromium against `tacos up` as a
 * user starts it (run `npm run build` first): a fixture page of ours, served from another loopback
 * origin, signs in, joins the queue, waits for its turn, enters, reserves a seat and pays, with the
 * client's very headers, so CORS preflights run for every call. The page never falls back to
 * invented tokens: every call must be 2xx and the page must show the outcome. Skipped only when no
 * Chromium executable exists (CI installs one, see .ci/run).
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import type {Browser} from 'playwright-core';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {chromiumPath, launchChromium, serveStatic, type StaticSite} from '../helpers/browser.js';
import {createProject, type Project} from '../helpers/up-project.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from '../helpers/required-checks.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/web-client');
const executable = chromiumPath();
if (!executable && ALL_CHECKS_REQUIRED)
  throw missingToolError('no Chromium for the browser test (set CHROMIUM_PATH or apt-get install chromium)');

let project: Project | undefined;
let site: StaticSite | undefined;
let browser: Browser | undefined;
let api = '';

beforeAll(async () => {
  if (!executable) return;
  // No queue tuning needed: a lone user is at position 1, within QUEUE_INSTANT_ADMISSION_POSITIONS
  // (default 10), which enters at once (no QUEUE_ADMISSION_MIN_WAIT, no admission bucket).
  project = await createProject();
  const started = await project.run(['up', '--detach'], {timeoutMs: 60_000});
  expect(started.code, started.stdout + started.stderr).toBe(0);
  api = `http://127.0.0.1:${project.ports.server}`;
  site = await serveStatic(FIXTURE);
  browser = await launchChromium(executable);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await project?.dispose();
}, 60_000);

interface RecordedCall {
  method: string;
  url: string;
  status: number;
  body: any;
}

/** A request the browser sent to the gateway, with the headers it really put on the wire. */
interface SentRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** Runs the page's flow for a query (scenario=... or flow=leave); returns what it recorded, showed, sent and logged. */
async function runFlow(query: string) {
  const page = await browser!.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  const sending: Array<Promise<SentRequest>> = [];
  page.on('request', (request) => {
    if (request.url().startsWith(api))
      sending.push(
        request
          .allHeaders()
          .then((headers) => ({method: request.method(), path: new URL(request.url()).pathname, headers})),
      );
  });
  try {
    await page.goto(`${site!.origin}/index.html?api=${encodeURIComponent(api)}&${query}`);
    // Settles by itself: every call of the page times out after 5 s and its polls are counted.
    const outcome = await page.evaluate(() => (globalThis as any).__done as Promise<string>);
    const calls = (await page.evaluate(() => (globalThis as any).__calls)) as RecordedCall[];
    const result = await page.evaluate(() => (globalThis as any).__result);
    const shown = await page.locator('#status').textContent();
    return {outcome, calls, result, shown, consoleErrors, sent: await Promise.all(sending)};
  } finally {
    await page.close();
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The client's headers (test/fixtures/contracts/REST.md 2.1) on every fetch the page made, from the page's origin: so the gateway saw what the real client sends. */
function expectClientHeaders(sent: SentRequest[], bearer?: string): void {
  expect(sent.length).toBeGreaterThan(0);
  for (const {method, path: route, headers} of sent) {
    const what = `${method} ${route}: ${JSON.stringify(headers)}`;
    expect(headers.origin, what).toBe(site!.origin);
    expect(headers['x-trace-id'], what).toMatch(UUID);
    expect(headers.accept, what).toBe('application/json');
    if (method === 'POST') {
      expect(headers['idempotency-key'], what).toMatch(UUID_V4);
      expect(headers['content-type'], what).toBe('application/json');
    }
    if (route.startsWith('/api/v1/auth/')) expect(headers.authorization, what).toBeUndefined();
  }
  // After sign-in every call carries the token, the queue's too; without sign-in none does.
  const afterLogin = sent.slice(sent.findIndex(({path: route}) => route === '/api/v1/queue/join'));
  for (const {method, path: route, headers} of afterLogin)
    expect(headers.authorization, `${method} ${route}`).toBe(bearer && `Bearer ${bearer}`);
}

function expectEveryCall2xx(calls: RecordedCall[]): void {
  expect(calls.length).toBeGreaterThan(0);
  for (const call of calls)
    expect(
      call.status,
      `${call.method} ${call.url} -> ${call.status} ${JSON.stringify(call.body)}`,
    ).toBeGreaterThanOrEqual(200);
  for (const call of calls)
    expect(call.status, `${call.method} ${call.url} -> ${call.status} ${JSON.stringify(call.body)}`).toBeLessThan(300);
}

/** The gateway's own view of a waiting token (outside the browser). */
async function queueStatus(token: string): Promise<{status: number; body: any}> {
  const response = await fetch(`${api}/api/v1/queue/status?token=${encodeURIComponent(token)}`, {
    signal: AbortSignal.timeout(5000),
  });
  return {status: response.status, body: await response.json().catch(() => undefined)};
}

describe.skipIf(!executable)(
  `the web client's flow in Chromium (${executable ?? 'no Chromium: set CHROMIUM_PATH or install chromium'})`,
  {timeout: 150_000},
  () => {
    it('signs in, queues, enters, reserves VIP-3-12 and pays (approve): every call 2xx, the fields the client reads, a confirmation, no CORS error', async () => {
      const {outcome, calls, result, shown, consoleErrors, sent} = await runFlow('scenario=approve');
      expect(outcome, shown ?? '').toBe('done');
      expectEveryCall2xx(calls);
      expectClientHeaders(sent, result.login.token);
      expect(shown).toMatch(/^Booking confirmed: reservation \S+/);
      expect(consoleErrors.filter((text) => /CORS|Access-Control|Failed to fetch/i.test(text))).toEqual([]);

      const paths = calls.map((call) => `${call.method} ${new URL(call.url).pathname}`);
      expect(paths).toEqual(
        expect.arrayContaining([
          'POST /api/v1/auth/login',
          'POST /api/v1/auth/register',
          'POST /api/v1/queue/join',
          'GET /api/v1/queue/status',
          'POST /api/v1/queue/enter',
          'POST /api/v1/reservations',
          'POST /api/v1/payments/intent',
        ]),
      );
      const authFields = {
        token: expect.any(String),
        user_id: expect.any(String),
        username: expect.any(String),
        display_name: expect.any(String),
        role: expect.any(String),
        expires_in: expect.any(Number),
      };
      expect(result.seededLogin).toMatchObject({...authFields, username: 'user01'});
      expect(result.registered).toMatchObject(authFields);
      expect(result.login).toMatchObject({...authFields, user_id: result.registered.user_id});
      expect(calls.find((call) => call.url.endsWith('/auth/register'))?.status).toBe(201);
      expect(result.joined.waiting_token).toEqual(expect.any(String));
      expect(result.joined.waiting_token).not.toMatch(/fallback/);
      const lastStatus = calls.filter((call) => call.url.includes('/queue/status')).at(-1)!.body;
      expect(lastStatus).toMatchObject({status: 'waiting', ready_for_entry: true, position: expect.any(Number)});
      expect(result.entered).toMatchObject({reservation_token: expect.any(String), ttl_sec: expect.any(Number)});
      expect(result.reservation.reservation_id).toEqual(expect.any(String));
      expect(result.reservation.reservation_id).not.toBe('');
      expect(result.reservation.hold_expires_at).toBeDefined();
      expect(result.intent.payment_intent_id).toEqual(expect.any(String));
      expect(result.intent.payment_intent_id).not.toBe('');
    });

    it('with scenario "fail" reads the payment status until FAILED and says the payment was refused', async () => {
      const {outcome, calls, result, shown, consoleErrors, sent} = await runFlow('scenario=fail&seat=VIP-3-13');
      expect(outcome, shown ?? '').toBe('done');
      expectEveryCall2xx(calls);
      // The status reads carry the Bearer too (a call of ours, test/fixtures/contracts/REST.md 2.3's plain fetch sends none).
      expectClientHeaders(sent, result.login.token);
      expect(shown).toMatch(/Payment refused/);
      const statusCalls = calls.filter((call) =>
        /\/api\/v1\/payments\/[^/]+\/status$/.test(new URL(call.url).pathname),
      );
      expect(statusCalls.at(-1)?.body).toMatchObject({status: 'FAILED'});
      expect(consoleErrors.filter((text) => /CORS|Access-Control|Failed to fetch/i.test(text))).toEqual([]);
    });

    it('the beacon leave of a closing queue tab (POST, text/plain, no custom headers) takes the waiting token out of the queue', async () => {
      const {outcome, calls, result, shown, sent} = await runFlow('flow=leave');
      expect(outcome, shown ?? '').toBe('done');
      expectEveryCall2xx(calls);
      expect(result.beaconQueued).toBe(true);
      const beacon = sent.find(({path: route}) => route === '/api/v1/queue/leave');
      expect(beacon, JSON.stringify(sent)).toMatchObject({
        method: 'POST',
        headers: {'content-type': expect.stringMatching(/^text\/plain/)},
      });
      expect(beacon!.headers['idempotency-key']).toBeUndefined();
      expectClientHeaders(sent.filter((request) => request !== beacon));
      // The beacon's answer is invisible to the page: ask the gateway (bounded) until the token no longer waits.
      let status = await queueStatus(result.waitingToken);
      for (let attempt = 0; attempt < 40 && status.status === 200 && status.body?.status !== 'left'; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        status = await queueStatus(result.waitingToken);
      }
      expect(
        status.status === 404 || status.body?.status === 'left',
        `waiting token still in the queue: ${status.status} ${JSON.stringify(status.body)}`,
      ).toBe(true);
    });

    it('answers the preflight of every call the client makes from another origin', async () => {
      for (const [method, route] of [
        ['POST', '/api/v1/queue/join'],
        ['GET', '/api/v1/queue/status?token=x'],
        ['DELETE', '/api/v1/queue/leave?token=x'],
        ['POST', '/api/v1/reservations'],
        ['POST', '/api/v1/payments/intent'],
      ]) {
        const response = await fetch(`${api}${route}`, {
          method: 'OPTIONS',
          headers: {
            Origin: site!.origin,
            'Access-Control-Request-Method': method,
            'Access-Control-Request-Headers': 'authorization,content-type,idempotency-key,x-trace-id',
          },
          signal: AbortSignal.timeout(5000),
        });
        expect(response.status, `${method} ${route}`).toBeGreaterThanOrEqual(200);
        expect(response.status, `${method} ${route}`).toBeLessThan(300);
        expect(response.headers.get('access-control-allow-origin'), `${method} ${route}`).toMatch(
          new RegExp(`^(\\*|${site!.origin.replaceAll('.', '\\.')})$`),
        );
        const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
        for (const header of ['authorization', 'content-type', 'idempotency-key', 'x-trace-id'])
          expect(allowed, `${method} ${route}`).toContain(header);
        expect(
          (response.headers.get('access-control-allow-methods') ?? '').toUpperCase(),
          `${method} ${route}`,
        ).toContain(method);
      }
    });
  },
);
