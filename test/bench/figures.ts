/** Checks on the figures `tacos bench` reports, shared by the bench tests. */
import {expect} from 'vitest';
import type {RunResult} from '../../src/services/bench/results.js';

/** Latencies in order: p50 <= p90 <= p99 <= max, all above zero. */
export function expectOrderedLatencies(latency: {p50: number; p90: number; p99: number; max: number}): void {
  expect(latency.p50).toBeGreaterThan(0);
  expect(latency.p50).toBeLessThanOrEqual(latency.p90);
  expect(latency.p90).toBeLessThanOrEqual(latency.p99);
  expect(latency.p99).toBeLessThanOrEqual(latency.max);
}

/** A run that measured OK answers and nothing else. */
export function expectCleanRun(run: RunResult | undefined, label: string): void {
  expect(run?.label).toBe(label);
  expect(run!.requests, JSON.stringify(run)).toBeGreaterThan(0);
  expect(run!.ok).toBe(run!.requests);
  expect(run!.errors).toEqual({});
  expect(run!.requestsPerSecond).toBeGreaterThan(0);
  expectOrderedLatencies(run!.latencyMs!);
  expect(run!.interrupted).toBe(false);
}

export interface TableRow {
  label: string;
  engine: string;
  requests: number;
  latency: {p50: number; p90: number; p99: number; max: number};
  errors: string;
}

/** The row of a run in the text table (columns are separated by two spaces or more). */
export function tableRow(stdout: string, label: string): TableRow {
  const line = stdout.split('\n').find((text) => text.startsWith(`${label}  `));
  expect(line, `no row "${label}" in:\n${stdout}`).toBeDefined();
  const cells = line!.split(/\s{2,}/);
  const number = (cell: string) => Number(cell.replaceAll(',', ''));
  return {
    label: cells[0],
    engine: cells[1],
    requests: number(cells[4]),
    latency: {p50: number(cells[6]), p90: number(cells[7]), p99: number(cells[8]), max: number(cells[9])},
    errors: cells[10],
  };
}
