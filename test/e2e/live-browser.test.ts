/**
 * Live queue updates in a real headless Chromium: a page of ours, served from another loopback
 * origin (the gateway's CORS_ALLOW_ORIGINS names it), joins the queue behind three people, follows
 * its token over a WebSocket and over an EventSource at once, and shows its place moving as the
 * test admits those ahead, then its own admission and the end of both streams. Skipped only when
 * no Chromium executable exists (CI installs one).
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import type {Browser, Page} from 'playwright-core';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {chromiumPath, launchChromium, serveStatic, type StaticSite} from '../helpers/browser.js';
import {postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from '../helpers/required-checks.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/live-client');
const executable = chromiumPath();
if (!executable && ALL_CHECKS_REQUIRED)
  throw missingToolError('no Chromium for the browser test (set CHROMIUM_PATH or apt-get install chromium)');

/** Bound of each wait for the page to show something. */
const SHOWN_WITHIN_MS = 15_000;
const AHEAD = 3;

/** The page's `document`, inside page.evaluate (this project's TypeScript has no DOM types). */
type PageGlobal = {document: {getElementById(id: string): {textContent: string | null} | null}};

let site: StaticSite | undefined;
let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!executable) return;
  site = await serveStatic(FIXTURE);
  redis = await startRedis();
  // Everyone here is within QUEUE_INSTANT_ADMISSION_POSITIONS (10): each enters as soon as asked.
  gateway = await startTestGateway({REDIS_ADDRESS: redis.address, LOG_LEVEL: 'warn', CORS_ALLOW_ORIGINS: site.origin});
  await waitForReady(gateway);
  browser = await launchChromium(executable);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await disposeRedis(redis);
  await site?.close();
}, 30_000);

/** What the element with this id shows on the page. */
function textOf(page: Page, id: string): Promise<string | null | undefined> {
  return page.evaluate((id) => (globalThis as unknown as PageGlobal).document.getElementById(id)?.textContent, id);
}

/** Waits (bounded) until the element shows exactly `value`. */
async function shown(page: Page, id: string, value: string): Promise<void> {
  await page
    .waitForFunction(
      ([id, value]) => (globalThis as unknown as PageGlobal).document.getElementById(id)?.textContent === value,
      [id, value] as const,
      {timeout: SHOWN_WITHIN_MS},
    )
    .catch(async (error: Error) => {
      const now = await textOf(page, id);
      throw new Error(`#${id} did not show "${value}" within ${SHOWN_WITHIN_MS} ms (shows "${now}"): ${error.message}`);
    });
}

async function enter(token: string): Promise<void> {
  const answer = await postJson(`${gateway!.http}/api/v1/queue/enter`, {waiting_token: token});
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
}

describe.skipIf(!executable)('live queue updates in a browser on another origin', () => {
  it('shows its place over a WebSocket and over SSE moving to admission, each place once and in order', async () => {
    const eventId = `live_browser_${Date.now()}`;
    const ahead: string[] = [];
    for (let index = 0; index < AHEAD; index++) {
      const joined = await postJson(`${gateway!.http}/api/v1/queue/join`, {
        event_id: eventId,
        user_id: `ahead-${index}`,
      });
      expect(joined.status).toBe(202);
      ahead.push(joined.body.waiting_token);
    }
    const page = await browser!.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    try {
      await page.goto(`${site!.origin}/index.html?api=${encodeURIComponent(gateway!.http)}&event=${eventId}`);
      for (const way of ['ws', 'sse']) {
        await shown(page, `${way}-position`, String(AHEAD + 1));
        await shown(page, `${way}-state`, 'open');
      }
      // Each admission ahead moves the page up one place on both streams before the next one.
      for (const [index, token] of ahead.entries()) {
        await enter(token);
        for (const way of ['ws', 'sse']) await shown(page, `${way}-position`, String(AHEAD - index));
      }
      const token = await textOf(page, 'token');
      await enter(token!);
      await shown(page, 'ws-position', 'admitted');
      await shown(page, 'sse-position', 'admitted');
      // The final state, then a normal close (1000) of the WebSocket; the page closes its EventSource.
      await shown(page, 'ws-state', 'closed 1000');
      await shown(page, 'sse-state', 'closed');
      const seen = {ws: await textOf(page, 'ws-seen'), sse: await textOf(page, 'sse-seen')};
      expect(seen).toEqual({ws: '4 3 2 1 admitted', sse: '4 3 2 1 admitted'});
      expect(pageErrors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 90_000);
});
