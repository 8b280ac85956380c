/**
 * `npm run contracts:check` (part of `npm test`): buf lint over proto/, and buf breaking against the
 * contracts as last released (released/contracts.binpb). Run on a copy of the repo's contracts, so
 * the copy can be broken on purpose.
 */
import {cp, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {afterEach, describe, expect, it} from 'vitest';
import {REPO_ROOT} from '../helpers/cli.js';

const PAYMENT_PROTO = path.join('proto', 'payment', 'v1', 'payment.proto');
const dirs: string[] = [];

/** A temp copy of what the check reads (package.json's script, buf.yaml, the protos, the baseline). */
async function contractsCopy(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-contracts-'));
  dirs.push(dir);
  for (const entry of ['package.json', 'buf.yaml', 'proto', 'third_party', 'released']) {
    await cp(path.join(REPO_ROOT, entry), path.join(dir, entry), {recursive: true});
  }
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

async function editFile(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  expect(text).toContain(from);
  await writeFile(file, text.replace(from, to));
}

function contractsCheck(cwd: string) {
  return execa('npm', ['run', '--silent', 'contracts:check'], {cwd, reject: false, all: true, timeout: 60_000});
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, {recursive: true, force: true})));
});

describe('npm run contracts:check', {timeout: 120_000}, () => {
  it('passes on the contracts as they are', async () => {
    const result = await contractsCheck(await contractsCopy());
    expect(result.exitCode, result.all).toBe(0);
  });

  it("fails with buf breaking's message when a field's number changes", async () => {
    const dir = await contractsCopy();
    await editFile(path.join(dir, PAYMENT_PROTO), 'string reservation_id = 1;', 'string reservation_id = 17;');
    const result = await contractsCheck(dir);
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(
      /payment\.proto:\d+:\d+:Previously present field "1" with name "reservation_id" on message "CreatePaymentIntentRequest" was deleted\./,
    );
  });

  it("fails with buf lint's message when a name breaks the style rules", async () => {
    const dir = await contractsCopy();
    await editFile(
      path.join(dir, PAYMENT_PROTO),
      'message CreatePaymentIntentRequest {',
      'message payment_note {\n  string text = 1;\n}\n\nmessage CreatePaymentIntentRequest {',
    );
    const result = await contractsCheck(dir);
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/payment\.proto:\d+:\d+:Message name "payment_note" should be PascalCase/);
  });
});
