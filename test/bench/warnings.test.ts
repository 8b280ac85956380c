/**
 * The generator's warnings under a bench's table: when its own load may have been the limit, or took
 * CPU from the stack it measured. They show only under load, so they are checked on run figures.
 */
import {describe, expect, it} from 'vitest';
import {generatorWarnings} from '../../src/services/bench/bench.js';
import type {GeneratorLoad, RunResult} from '../../src/services/bench/results.js';

function run(engine: RunResult['engine'], generator: GeneratorLoad, threads = 2): RunResult {
  return {
    label: 'join over REST',
    protocol: 'http',
    engine,
    shape: {threads, connections: 50, concurrency: 50},
    durationMs: 1000,
    requests: 1000,
    ok: 1000,
    requestsPerSecond: 1000,
    latencyMs: null,
    errors: {},
    generator,
    notes: [],
    interrupted: false,
  };
}

describe('generator warnings', () => {
  it('none for a builtin generator with room to spare', () => {
    expect(
      generatorWarnings(
        run('builtin', {cpuPercentOfCore: 30, cpuPercentOfMachine: 15, eventLoopUtilization: [0.4, 0.5]}),
      ),
    ).toEqual([]);
  });

  it('names the builtin thread over 90% busy and suggests one thread more', () => {
    const warnings = generatorWarnings(
      run('builtin', {cpuPercentOfCore: 30, cpuPercentOfMachine: 15, eventLoopUtilization: [0.5, 0.95]}),
    );
    expect(warnings).toEqual([
      expect.stringMatching(/^join over REST: generator thread 2 was 95% busy, .*--threads 3/),
    ]);
  });

  it('says when the builtin generator took over a fifth of the machine', () => {
    const warnings = generatorWarnings(
      run('builtin', {cpuPercentOfCore: 50, cpuPercentOfMachine: 25, eventLoopUtilization: [0.5]}, 1),
    );
    expect(warnings).toEqual([
      expect.stringMatching(/the generator used 25% of this machine's CPU.*--engine h2load or wrk/),
    ]);
  });

  it('says when wrk or h2load used over 90% of a core per thread, and not below', () => {
    expect(
      generatorWarnings(run('wrk', {cpuPercentOfCore: 190, cpuPercentOfMachine: 95, eventLoopUtilization: []})),
    ).toEqual([expect.stringMatching(/wrk used 95% of a core per thread, .*--threads 3/)]);
    // A C tool over a fifth of the machine is fine: it costs far less per request than what it measures.
    expect(
      generatorWarnings(run('h2load', {cpuPercentOfCore: 120, cpuPercentOfMachine: 60, eventLoopUtilization: []})),
    ).toEqual([]);
  });
});
