/**
 * The /proc reader the benchmarks use for a cluster: its CPU is its primary's and its workers'
 * (real child processes, stopped at the end).
 */
import {execa, type ResultPromise} from 'execa';
import {afterEach, describe, expect, it} from 'vitest';
import {processCpuMicros, processTreeCpuMicros} from '../../src/services/proc.js';

// A parent with one child; the child spins until it has used 400 ms of CPU, says so, and waits.
// Either ends when its stdin closes: a parent that dies leaves no child behind.
const CHILD =
  'while (process.cpuUsage().user < 400_000); console.log("spun"); process.stdin.on("data", () => {}).on("close", () => process.exit(0));';
// A plain `node -e` script: execa is ESM only and cannot be require()d there.
const PARENT = `
const {spawn} = require('node:child_process');
spawn(process.execPath, ['-e', ${JSON.stringify(CHILD)}], {stdio: ['pipe', 'inherit', 'inherit']});
process.stdin.on('data', () => {}).on('close', () => process.exit(0));
`;

let parent: ResultPromise | undefined;

afterEach(async () => {
  if (parent && parent.exitCode === null) {
    // Closing its stdin ends it, and so its child's.
    parent.stdin!.end();
    await parent;
  }
});

describe.skipIf(process.platform !== 'linux')('processTreeCpuMicros', () => {
  it("counts the children's CPU with the parent's", async () => {
    const started = execa(process.execPath, ['-e', PARENT], {
      stdio: ['pipe', 'pipe', 'inherit'],
      buffer: false,
      reject: false,
    });
    parent = started;
    const spun = new Promise<void>((resolve, reject) => {
      started.stdout.on('data', (chunk: Buffer) => String(chunk).includes('spun') && resolve());
      void started.then(() => reject(new Error('the parent exited before its child spun')));
    });
    await Promise.race([
      spun,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no spin within 10 s')), 10_000)),
    ]);
    const own = processCpuMicros(parent.pid)!;
    const tree = processTreeCpuMicros(parent.pid!);
    // The child used 400 ms of CPU; Linux counts in 10 ms ticks.
    expect(tree - own).toBeGreaterThanOrEqual(300_000);
  });

  it('is 0 for a process that is gone', () => {
    expect(processTreeCpuMicros(2 ** 22 + 1)).toBe(0);
  });
});
