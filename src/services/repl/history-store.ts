import {readFile} from 'node:fs/promises';
import path from 'node:path';
import type {JsonValue} from '@bufbuild/protobuf';
import {writeFileAtomically} from '../atomic-file.js';

/** Lines typed, kept for the Up arrow across runs. */
export const MAX_LINES = 500;
/** Requests made, kept for `history` and `call --repeat` across runs. */
export const MAX_REQUESTS = 200;

export interface RequestEntry {
  /** pkg.Service/Method */
  method: string;
  requests: JsonValue[];
  /** ISO time the call was made. */
  at: string;
}

/**
 * The REPL's history in `<state dir>/repl/`: `history` (lines typed, oldest first, one a line) and
 * `requests.jsonl` (requests made, one JSON entry a line). Both bounded, both rewritten whole and
 * atomically; a file that cannot be read or parsed is an empty history, not an error.
 */
export class HistoryStore {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    /** Newest first, as readline keeps its history. */
    public lines: string[],
    /** Oldest first. */
    public readonly requests: RequestEntry[],
  ) {}

  static async load(stateDir: string): Promise<HistoryStore> {
    const dir = path.join(stateDir, 'repl');
    const read = (name: string) => readFile(path.join(dir, name), 'utf8').catch(() => '');
    const [lines, requests] = await Promise.all([read('history'), read('requests.jsonl')]);
    return new HistoryStore(
      dir,
      lines.split('\n').filter(Boolean).reverse().slice(0, MAX_LINES),
      requests
        .split('\n')
        .flatMap((line) => parseEntry(line) ?? [])
        .slice(-MAX_REQUESTS),
    );
  }

  /** readline's history (newest first) after a line was added. */
  saveLines(newestFirst: string[]): Promise<void> {
    this.lines = newestFirst.slice(0, MAX_LINES);
    const text = [...this.lines].reverse().join('\n');
    return this.write('history', text ? `${text}\n` : '');
  }

  addRequest(entry: RequestEntry): Promise<void> {
    this.requests.push(entry);
    this.requests.splice(0, this.requests.length - MAX_REQUESTS);
    return this.write('requests.jsonl', this.requests.map((one) => `${JSON.stringify(one)}\n`).join(''));
  }

  /** The newest request made to `method` (pkg.Service/Method), in this run or an earlier one. */
  lastRequestOf(method: string): RequestEntry | undefined {
    return this.requests.findLast((entry) => entry.method === method);
  }

  /** Waits for the writes begun (before leaving). */
  flush(): Promise<void> {
    return this.writing;
  }

  /** One write at a time, in order: the newest text always lands last. */
  private write(name: string, text: string): Promise<void> {
    const next = this.writing.then(() => writeFileAtomically(path.join(this.dir, name), text));
    this.writing = next.catch(() => undefined);
    return next;
  }
}

function parseEntry(line: string): RequestEntry | undefined {
  try {
    const entry = JSON.parse(line) as Partial<RequestEntry>;
    if (typeof entry.method === 'string' && Array.isArray(entry.requests) && typeof entry.at === 'string')
      return entry as RequestEntry;
  } catch {
    // A torn or foreign line: skipped.
  }
  return undefined;
}
