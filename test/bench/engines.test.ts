/**
 * `tacos bench --engine h2load|wrk` against a real gateway: the tools' figures read back into the
 * same report. Skipped, with the reason printed, only when the tool is not installed (CI installs
 * both: nghttp2-client and wrk).
 */
import {execaSync} from 'execa';
import {describe, expect, it} from 'vitest';
import {runCli} from '../helpers/cli.js';
import {gatewayFixture} from './fixture.js';
import {expectCleanRun, tableRow, expectOrderedLatencies} from './figures.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from '../helpers/required-checks.js';

function installed(tool: string): boolean {
  if (!execaSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore', reject: false}).failed) return true;
  if (ALL_CHECKS_REQUIRED) throw missingToolError(`${tool} is not installed for the tacos bench --engine tests`);
  console.warn(
    `tacos bench --engine ${tool} tests skipped: ${tool} is not installed (apt-get install ${tool === 'h2load' ? 'nghttp2-client' : 'wrk'}).`,
  );
  return false;
}

const {targetFlags} = gatewayFixture();

describe.runIf(installed('h2load'))('h2load', () => {
  it('runs join over gRPC (HTTP/2 streams) and over REST (--h1), with figures from its log', async () => {
    const result = await runCli([
      'bench',
      ...targetFlags(),
      '--engine',
      'h2load',
      '--duration',
      '1s',
      '--concurrency',
      '4',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const [overGrpc, overRest] = report.runs;
    expectCleanRun(overGrpc, 'join over gRPC');
    expectCleanRun(overRest, 'join over REST');
    expect(overGrpc).toMatchObject({engine: 'h2load', shape: {connections: expect.any(Number), concurrency: 4}});
    expect(overRest.shape).toMatchObject({connections: 4, concurrency: 4});
    expect(overGrpc.notes.join(' ')).toContain('h2load sees HTTP statuses only');
    expect(report.ratio.requestsPerSecond).toBeGreaterThan(0);
  });

  it('refuses --max-requests, which it cannot honour in a timed run (exit 2)', async () => {
    const result = await runCli(['bench', ...targetFlags(), '--engine', 'h2load', '--max-requests', '100']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('h2load cannot stop at a request count');
  });
});

describe.runIf(installed('wrk'))('wrk', () => {
  it('runs join over REST, with its answers counted by status, within --max-requests', async () => {
    const result = await runCli([
      'bench',
      ...targetFlags(),
      '--engine',
      'wrk',
      '--protocol',
      'http',
      '--duration',
      '1s',
      '--warmup',
      '0ms',
      '--concurrency',
      '4',
      '--max-requests',
      '300',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const row = tableRow(result.stdout, 'join over REST');
    expect(row.engine).toBe('wrk');
    expect(row.requests).toBeGreaterThan(0);
    expect(row.requests).toBeLessThanOrEqual(300);
    expectOrderedLatencies(row.latency);
    expect(row.errors).toBe('-');
  });

  it('has no gRPC: join over gRPC with wrk is a usage error', async () => {
    const result = await runCli(['bench', ...targetFlags(), '--engine', 'wrk']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('wrk has no gRPC');
    expect(result.stderr).toContain('--engine h2load');
  });
});
