/**
 * Checks that need a tool (Go, openssl) skip on a developer's machine without it, and fail where
 * every check must run (CI=true, or TACOS_REQUIRE_ALL_CHECKS=1 as .ci/run sets it). Runs the real
 * test files in a child vitest whose PATH holds no tool at all.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {REPO_ROOT} from '../helpers/cli.js';

const VITEST = path.join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs');
let emptyPath: string;

beforeAll(async () => {
  emptyPath = await mkdtemp(path.join(tmpdir(), 'tacos-no-tools-'));
});
afterAll(() => rm(emptyPath, {recursive: true, force: true}));

/** `vitest run FILE -t NAME` with no tool on PATH, and only the given variables of ours set. */
function runWithoutTools(file: string, name: string, env: Record<string, string>) {
  return execa(process.execPath, [VITEST, 'run', file, '-t', name], {
    cwd: REPO_ROOT,
    env: {PATH: emptyPath, HOME: process.env.HOME ?? emptyPath, NO_COLOR: '1', ...env},
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 90_000,
  });
}

const CASES = [
  {file: 'test/codegen/go-template.test.ts', name: 'compiles and vets', missing: /missing .*go, protoc/},
  {
    file: 'test/gateway/tls.test.ts',
    name: 'serves gRPC over TLS',
    missing: /openssl could not make a self-signed certificate/,
  },
];

describe('a check whose tool is missing', {timeout: 120_000}, () => {
  for (const {file, name, missing} of CASES) {
    it(`${file}: skips on a developer's machine`, async () => {
      const result = await runWithoutTools(file, name, {});
      expect(result.exitCode, result.all).toBe(0);
      // Skipped (those -t leaves out count as skipped too), saying why.
      expect(result.all).toMatch(/^\s*Tests\s+\d+ skipped \(\d+\)$/m);
      expect(result.all).toMatch(missing);
    });

    it(`${file}: fails with TACOS_REQUIRE_ALL_CHECKS=1 (.ci/run) and with CI=true, naming what is missing`, async () => {
      const required: Array<Record<string, string>> = [{TACOS_REQUIRE_ALL_CHECKS: '1'}, {CI: 'true'}];
      for (const env of required) {
        const result = await runWithoutTools(file, name, env);
        expect(result.exitCode, result.all).not.toBe(0);
        expect(result.all).toMatch(missing);
      }
    });
  }
});
