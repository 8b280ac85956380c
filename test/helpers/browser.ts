/**
 * A real Chromium for browser tests (playwright-core drives the system's browser: no download) and
 * a tiny static server that serves a fixture page from its own loopback origin, so every call the
 * page makes to the gateway is cross-origin like the real web client's.
 */
import {existsSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {createServer} from 'node:http';
import type {AddressInfo} from 'node:net';
import path from 'node:path';
import {chromium, type Browser} from 'playwright-core';

/** CHROMIUM_PATH, else Debian's chromium; undefined when neither exists (the browser test is skipped then). */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((candidate): candidate is string => Boolean(candidate) && existsSync(candidate!));
}

/** Headless, sandbox-less, with nothing phoning home; playwright gives it a fresh temporary profile. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const TYPES: Record<string, string> = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8'};

export interface StaticSite {
  origin: string;
  close(): Promise<void>;
}

/** Serves the files of dir (no sub-paths outside it) on 127.0.0.1 at a free port. */
export async function serveStatic(dir: string): Promise<StaticSite> {
  const server = createServer((request, response) => {
    const name = new URL(request.url ?? '/', 'http://x').pathname.replace(/^\/$/, '/index.html');
    const file = path.join(dir, path.normalize(name));
    if (!file.startsWith(dir + path.sep) || !TYPES[path.extname(file)]) {
      response.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => response.writeHead(200, {'Content-Type': TYPES[path.extname(file)]}).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
