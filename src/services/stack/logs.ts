import {open, readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {usageError} from '../errors.js';
import {stateDir} from '../paths.js';

export interface LogsOptions {
  service?: string;
  lines: number;
  follow: boolean;
  signal: AbortSignal;
  /** Called with each line and the service it came from. */
  onLine(service: string, line: string): void;
}

/** The last lines of each service's log file; with `follow`, new lines as they are written until the signal aborts. */
export async function showLogs(options: LogsOptions): Promise<void> {
  const dir = path.join(stateDir(), 'logs');
  const available = (await readdir(dir).catch(() => []))
    .filter((file) => file.endsWith('.log'))
    .map((file) => file.slice(0, -4))
    .sort();
  if (options.service && !available.includes(options.service)) {
    throw usageError(
      available.length
        ? `No logs of "${options.service}": there are logs of ${available.join(', ')}.`
        : `No logs in ${dir}: has \`tacos up\` run here?`,
    );
  }
  const services = options.service ? [options.service] : available.filter((name) => name !== 'supervisor');
  const offsets = new Map<string, number>();
  for (const service of services) {
    const file = path.join(dir, `${service}.log`);
    const {size} = await stat(file);
    // The tail is enough for the last lines; a long-running stack's log may be large.
    const text = await readRange(file, Math.max(0, size - 1_048_576), size);
    for (const line of text.split('\n').filter(Boolean).slice(-options.lines)) options.onLine(service, line);
    offsets.set(service, size);
  }
  while (options.follow && !options.signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const service of services) {
      const file = path.join(dir, `${service}.log`);
      const size = (await stat(file).catch(() => undefined))?.size ?? 0;
      const from = offsets.get(service) ?? 0;
      // A log that shrank was started anew (a new `tacos up`): read it from the top.
      const start = size < from ? 0 : from;
      if (size === start) continue;
      const text = await readRange(file, start, size);
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      for (const line of complete.split('\n').filter(Boolean)) options.onLine(service, line);
      offsets.set(service, start + Buffer.byteLength(complete));
    }
  }
}

async function readRange(file: string, from: number, to: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    await handle.read(buffer, 0, buffer.length, from);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}
