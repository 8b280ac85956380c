/**
 * `tacos serve <mock> --latency ... --fault-door ...` as a user runs it (node bin/run.js: run
 * `npm run build` first): the start-up faults go to the door named and the other door gets none;
 * a door that does not exist fails before anything listens.
 */
import {afterAll, describe, expect, it} from 'vitest';
import {runCli, startCli, type LongRunningCli} from '../helpers/cli.js';

const running: LongRunningCli[] = [];

afterAll(() => {
  for (const cli of running) cli.kill();
});

describe('tacos serve <mock> --fault-door', () => {
  it('--latency 300ms --error-rate 0.5 --fault-door http: the HTTP door has them, the gRPC door none', async () => {
    const args = ['serve', 'payment', '--http-port', '0', '--grpc-port', '0', '--latency', '300ms'];
    const cli = startCli([...args, '--error-rate', '0.5', '--fault-door', 'http'], {env: {LOG_LEVEL: 'info'}});
    running.push(cli);
    const line = await cli.waitForLine((candidate) => candidate.msg === 'payment mock listening');
    const expected = {
      latency_ms: null,
      error_rate: null,
      doors: {grpc: {latency_ms: 0, error_rate: 0}, http: {latency_ms: 300, error_rate: 0.5}},
    };
    expect(line).toMatchObject(expected);
    expect(await (await fetch(`${String(line.http)}/admin/faults`)).json()).toEqual(expected);
  });

  it('--fault-door tcp fails with exit 2 naming the flag and its choices, before listening', async () => {
    const result = await runCli([
      'serve',
      'reservation',
      '--http-port',
      '0',
      '--grpc-port',
      '0',
      '--fault-door',
      'tcp',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--fault-door');
    expect(result.stderr).toMatch(/grpc.*http.*both/s);
    expect(result.stdout).not.toContain('mock listening');
  });
});
