/** The REPL's history in the state dir: kept across runs, bounded, never half written. */
import {mkdtemp, readFile, readdir, rm, writeFile, mkdir} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterEach, beforeEach, describe, expect, it} from 'vitest';
import {HistoryStore, MAX_LINES, MAX_REQUESTS} from '../../src/services/repl/history-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-repl-history-'));
});
afterEach(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('HistoryStore', () => {
  it('gives the next run the lines typed (newest first, for the Up arrow) and the requests made', async () => {
    const first = await HistoryStore.load(dir);
    await first.saveLines(['service AllTypes']);
    await first.saveLines(['call Unary -d {}', 'service AllTypes']);
    await first.addRequest({method: 'pkg.Svc/Unary', requests: [{a: 1}], at: '2026-12-04T10:00:00.000Z'});
    await first.addRequest({method: 'pkg.Svc/Other', requests: [], at: '2026-12-04T10:00:01.000Z'});

    const next = await HistoryStore.load(dir);
    expect(next.lines).toEqual(['call Unary -d {}', 'service AllTypes']);
    expect(await readFile(path.join(dir, 'repl', 'history'), 'utf8')).toBe('service AllTypes\ncall Unary -d {}\n');
    expect(next.requests.map((entry) => entry.method)).toEqual(['pkg.Svc/Unary', 'pkg.Svc/Other']);
    expect(next.lastRequestOf('pkg.Svc/Unary')?.requests).toEqual([{a: 1}]);
    expect(next.lastRequestOf('pkg.Svc/Missing')).toBeUndefined();
  });

  it(`keeps the last ${MAX_LINES} lines and ${MAX_REQUESTS} requests`, async () => {
    const store = await HistoryStore.load(dir);
    await store.saveLines(Array.from({length: MAX_LINES + 20}, (_, i) => `line ${MAX_LINES + 19 - i}`));
    for (let i = 0; i < MAX_REQUESTS + 5; i++)
      await store.addRequest({method: 'pkg.Svc/M', requests: [{i}], at: new Date(i * 1000).toISOString()});
    const next = await HistoryStore.load(dir);
    expect(next.lines).toHaveLength(MAX_LINES);
    expect(next.lines[0]).toBe(`line ${MAX_LINES + 19}`);
    expect(next.requests).toHaveLength(MAX_REQUESTS);
    expect(next.requests[0].requests).toEqual([{i: 5}]);
    // Written through temporary files renamed into place: none is left behind.
    expect((await readdir(path.join(dir, 'repl'))).sort()).toEqual(['history', 'requests.jsonl']);
  });

  it('reads a damaged requests file as what it can parse, and a missing one as empty', async () => {
    expect((await HistoryStore.load(dir)).requests).toEqual([]);
    await mkdir(path.join(dir, 'repl'));
    await writeFile(
      path.join(dir, 'repl', 'requests.jsonl'),
      `{"method":"pkg.Svc/M","requests":[{}],"at":"2026-12-04T10:00:00.000Z"}\n{"method":"pkg.Sv`,
    );
    expect((await HistoryStore.load(dir)).requests).toHaveLength(1);
  });
});
