import {spawnSync} from 'node:child_process';
import type {TestContext} from 'vitest';

/**
 * Where every check must run: in CI (CI=true, as CI services set it) and under .ci/run, which sets
 * TACOS_REQUIRE_ALL_CHECKS=1. There a missing tool fails the test, so CI cannot pass by skipping.
 */
export const ALL_CHECKS_REQUIRED = process.env.TACOS_REQUIRE_ALL_CHECKS === '1' || process.env.CI === 'true';

/** The error a test throws when a tool it needs is missing where every check must run. */
export function missingToolError(reason: string): Error {
  return new Error(`${reason} (every check must run here: CI=true or TACOS_REQUIRE_ALL_CHECKS=1)`);
}

/** Skips the test saying what is missing, or fails it where every check must run. */
export function skipOrFail(context: TestContext, reason: string): never {
  if (ALL_CHECKS_REQUIRED) throw missingToolError(reason);
  console.log(`skipped: ${reason}`);
  return context.skip(reason);
}

/** Whether the shell finds this program on PATH. */
export function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program], {stdio: 'ignore'}).status === 0;
}
