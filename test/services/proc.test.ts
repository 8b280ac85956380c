/**
 * The /proc reader the benchmarks use for a cluster: its CPU is its primary's and its workers'
 * (real child processes, stopped at the end).
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {once} from 'node:events';
import {afterEach, describe, expect, it} from 'vitest';
import {processCpuMicros, processTreeCpuMicros} from '../../src/services/stack/proc.js';

// A parent with one child; the child spins for 400 ms of CPU, says so, and waits to be stopped.
const CHILD = 'const end = Date.now() + 400; while (Date.now() < end); console.log("spun"); setInterval(() => {}, 1000);';
const PARENT = `
const {spawn} = require('node:child_process');
const child = spawn(process.execPath, ['-e', ${JSON.stringify(CHILD)}], {stdio: ['ignore', 'inherit', 'inherit']});
process.on('SIGTERM', () => { child.kill(); process.exit(0); });
setInterval(() => {}, 1000);
`;

let parent: ChildProcess | undefined;

afterEach(async () => {
  if (parent && parent.exitCode === null) {
    parent.kill('SIGTERM');
    await once(parent, 'exit');
  }
});

describe.skipIf(process.platform !== 'linux')('processTreeCpuMicros', () => {
  it("counts the children's CPU with the parent's", async () => {
    parent = spawn(process.execPath, ['-e', PARENT], {stdio: ['ignore', 'pipe', 'inherit']});
    const spun = new Promise<void>((resolve, reject) => {
      parent!.stdout!.on('data', (chunk: Buffer) => String(chunk).includes('spun') && resolve());
      parent!.once('exit', () => reject(new Error('the parent exited before its child spun')));
    });
    await Promise.race([spun, new Promise((_, reject) => setTimeout(() => reject(new Error('no spin within 10 s')), 10_000))]);
    const own = processCpuMicros(parent.pid)!;
    const tree = processTreeCpuMicros(parent.pid!);
    // The child spun for 400 ms; Linux counts in 10 ms ticks.
    expect(tree - own).toBeGreaterThanOrEqual(300_000);
  });

  it('is 0 for a process that is gone', () => {
    expect(processTreeCpuMicros(2 ** 22 + 1)).toBe(0);
  });
});
