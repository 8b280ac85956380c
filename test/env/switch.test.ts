import {chmod, readFile, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import dotenv from 'dotenv';
import {afterEach, describe, expect, it} from 'vitest';
import {loadEnvironment} from '../../src/services/config.js';
import {EnvParseError} from '../../src/services/env-document.js';
import {switchEnvironments} from '../../src/services/env/switch.js';
import {TacosError} from '../../src/services/errors.js';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {FIXTURES, projectWith, replaceExact} from './helpers.js';

/** For each fixture, switched to grpc with --percent 60: the exact edits of its original text. */
const EXPECTED: Record<string, (original: string) => string> = {
  crlf: (text) =>
    replaceExact(text, [
      ['\r\nGRPC_ENABLED=false\r\n', '\r\nGRPC_ENABLED=true\r\n'],
      ['GRPC_TRAFFIC_PERCENT=0\r\n', 'GRPC_TRAFFIC_PERCENT=60\r\n'],
    ]),
  bom: (text) =>
    replaceExact(text, [
      ['export GRPC_ENABLED="false"', 'export GRPC_ENABLED="true"'],
      ['export GRPC_TRAFFIC_PERCENT="25"', 'export GRPC_TRAFFIC_PERCENT="60"'],
    ]),
  export: (text) =>
    replaceExact(text, [
      ['  export   GRPC_ENABLED = false\n', '  export   GRPC_ENABLED = true\n'],
      ['export GRPC_TRAFFIC_PERCENT=5\n', 'export GRPC_TRAFFIC_PERCENT=60\n'],
    ]),
  quotes: (text) =>
    replaceExact(text, [
      ["GRPC_ENABLED='false'", "GRPC_ENABLED='true'"],
      ['GRPC_TRAFFIC_PERCENT=`10`', 'GRPC_TRAFFIC_PERCENT=`60`'],
    ]),
  multiline: (text) =>
    replaceExact(text, [
      ['\nGRPC_ENABLED=false\n', '\nGRPC_ENABLED=true\n'],
      ['GRPC_TRAFFIC_PERCENT=50\n', 'GRPC_TRAFFIC_PERCENT=60\n'],
    ]),
  inline: (text) =>
    replaceExact(text, [
      ['GRPC_ENABLED=false   # off', 'GRPC_ENABLED=true   # off'],
      ['GRPC_TRAFFIC_PERCENT = 0 #pct', 'GRPC_TRAFFIC_PERCENT = 60 #pct'],
    ]),
  duplicates: (text) =>
    replaceExact(text, [
      ['GRPC_ENABLED=false\n', 'GRPC_ENABLED=true\n'],
      ['GRPC_ENABLED="false"', 'GRPC_ENABLED="true"'],
      ['GRPC_TRAFFIC_PERCENT=1\n', 'GRPC_TRAFFIC_PERCENT=60\n'],
      ['GRPC_TRAFFIC_PERCENT=2\n', 'GRPC_TRAFFIC_PERCENT=60\n'],
    ]),
  nofinal: (text) => `${text}\nGRPC_ENABLED=true\nGRPC_TRAFFIC_PERCENT=60`,
  missingcrlf: (text) => `${text}GRPC_ENABLED=true\r\nGRPC_TRAFFIC_PERCENT=60\r\n`,
  secret: (text) => `${replaceExact(text, [['GRPC_ENABLED=false\n', 'GRPC_ENABLED=true\n']])}GRPC_TRAFFIC_PERCENT=60\n`,
};
const NAMES = Object.keys(EXPECTED);

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, {recursive: true, force: true});
});

async function project(names = NAMES): Promise<string> {
  const dir = await projectWith(names);
  dirs.push(dir);
  await chmod(path.join(dir, '.env.secret'), 0o600).catch(() => undefined);
  return dir;
}

const original = (name: string) => readFile(path.join(FIXTURES, `${name}.env`), 'utf8');
const current = (dir: string, name: string) => readFile(path.join(dir, `.env.${name}`), 'utf8');

describe('env switch (service)', () => {
  it('changes only the intended values of every awkward file, byte for byte, and the gateway reads them', async () => {
    const dir = await project();
    const results = await switchEnvironments({transport: 'grpc', projectDir: dir, env: NAMES.join(','), percent: 60});
    expect(results.map((result) => [result.name, result.status])).toEqual(NAMES.map((name) => [name, 'changed']));
    for (const name of NAMES) {
      expect(await current(dir, name), name).toBe(EXPECTED[name](await original(name)));
      const config = readGatewayConfig(loadEnvironment({envName: name, projectDir: dir, processEnv: {}}));
      expect([name, config.grpcEnabled, config.rollout.grpcTrafficPercent]).toEqual([name, true, 60]);
    }
    expect((await stat(path.join(dir, '.env.secret'))).mode & 0o777).toBe(0o600);
    const duplicates = results.find((result) => result.name === 'duplicates')!;
    expect(duplicates.warnings).toEqual([
      'GRPC_ENABLED appears 2 times in .env.duplicates (lines 1, 4); all are set to true.',
      'GRPC_TRAFFIC_PERCENT appears 2 times in .env.duplicates (lines 5, 6); all are set to 60.',
    ]);
  });

  it('switches back to http keeping everything else, and a rerun rewrites nothing', async () => {
    const dir = await project();
    await switchEnvironments({transport: 'grpc', projectDir: dir, all: true, percent: 60});
    const before = new Map<string, {ino: number; mtimeMs: number}>();
    for (const name of NAMES) before.set(name, await stat(path.join(dir, `.env.${name}`)));
    const rerun = await switchEnvironments({transport: 'grpc', projectDir: dir, all: true, percent: 60});
    expect(rerun.every((result) => result.status === 'unchanged' && result.diff === '')).toBe(true);
    for (const name of NAMES) {
      const after = await stat(path.join(dir, `.env.${name}`));
      expect([after.ino, after.mtimeMs]).toEqual([before.get(name)!.ino, before.get(name)!.mtimeMs]);
    }
    await switchEnvironments({transport: 'http', projectDir: dir, all: true});
    for (const name of NAMES) {
      const text = await current(dir, name);
      const values = dotenv.parse(text);
      expect(values.GRPC_ENABLED, name).toBe('false');
      // Only GRPC_ENABLED differs from the grpc result.
      const grpc = dotenv.parse(EXPECTED[name](await original(name)));
      expect({...values, GRPC_ENABLED: 'true'}).toEqual(grpc);
      expect(readGatewayConfig(loadEnvironment({envName: name, projectDir: dir, processEnv: {}})).grpcEnabled).toBe(
        false,
      );
    }
  });

  it('leaves an equivalent value alone (GRPC_ENABLED=1 is already grpc)', async () => {
    const dir = await project([]);
    await writeFile(path.join(dir, '.env.local'), 'GRPC_ENABLED=1\n');
    const [result] = await switchEnvironments({transport: 'grpc', projectDir: dir});
    expect(result).toMatchObject({name: 'local', status: 'unchanged'});
  });

  it('--backup keeps the original bytes and mode as .env.<name>.bak', async () => {
    const dir = await project(['secret', 'crlf']);
    await switchEnvironments({transport: 'grpc', projectDir: dir, env: 'secret,crlf', backup: true});
    for (const name of ['secret', 'crlf'])
      expect(await readFile(path.join(dir, `.env.${name}.bak`), 'utf8')).toBe(await original(name));
    expect((await stat(path.join(dir, '.env.secret.bak'))).mode & 0o777).toBe(0o600);
  });

  it('--dry-run writes nothing and returns a unified diff with secrets masked', async () => {
    const dir = await project(['secret', 'multiline']);
    const results = await switchEnvironments({
      transport: 'grpc',
      projectDir: dir,
      env: 'secret,multiline',
      dryRun: true,
    });
    for (const name of ['secret', 'multiline']) expect(await current(dir, name)).toBe(await original(name));
    const secret = results.find((result) => result.name === 'secret')!;
    expect(secret.status).toBe('would-change');
    expect(secret.diff).toBe(
      [
        '--- a/.env.secret',
        '+++ b/.env.secret',
        '@@ -1,5 +1,5 @@',
        ' # mode 0600',
        ' JWT_SECRET=****',
        " DB_PASSWORD='****'",
        '-GRPC_ENABLED=false',
        '+GRPC_ENABLED=true',
        ' API_TOKEN=****',
        '',
      ].join('\n'),
    );
    const multiline = results.find((result) => result.name === 'multiline')!;
    expect(multiline.diff).not.toContain('line-one-secret');
    expect(multiline.diff).toContain('@@ -4,6 +4,6 @@\n ****"\n NOTE=');
    expect(multiline.diff).toContain('-GRPC_ENABLED=false\n+GRPC_ENABLED=true\n');
  });

  it('refuses production without a terminal and without --yes, writing no file at all', async () => {
    const dir = await project(['crlf']);
    await writeFile(path.join(dir, '.env.prod'), 'GRPC_ENABLED=false\n');
    await writeFile(path.join(dir, '.env.live'), 'SERVER_ENVIRONMENT=production\nGRPC_ENABLED=false\n');
    for (const env of ['crlf,prod', 'live,crlf']) {
      const error = await switchEnvironments({transport: 'grpc', projectDir: dir, env}).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(TacosError);
      expect((error as TacosError).exitCode).toBe(2);
      expect((error as TacosError).hint).toContain('--yes');
    }
    expect(await current(dir, 'crlf')).toBe(await original('crlf'));
    expect(await current(dir, 'prod')).toBe('GRPC_ENABLED=false\n');
    expect(await current(dir, 'live')).toBe('SERVER_ENVIRONMENT=production\nGRPC_ENABLED=false\n');

    const declined = await switchEnvironments({
      transport: 'grpc',
      projectDir: dir,
      env: 'crlf,prod',
      confirm: async () => false,
    }).catch((caught: unknown) => caught);
    expect((declined as TacosError).exitCode).toBe(1);
    expect(await current(dir, 'prod')).toBe('GRPC_ENABLED=false\n');

    const questions: string[] = [];
    await switchEnvironments({
      transport: 'grpc',
      projectDir: dir,
      env: 'crlf,prod,live',
      confirm: async (question) => (questions.push(question), true),
    });
    expect(questions).toEqual(['Switch production (.env.prod, .env.live) to grpc?']);
    await switchEnvironments({transport: 'http', projectDir: dir, env: 'prod', yes: true});
    expect(await current(dir, 'prod')).toBe('GRPC_ENABLED=false\n');
  });

  it('names a file it cannot parse (with the line) and changes no file', async () => {
    for (const [bad, line] of [
      ['bad-unterminated', 2],
      ['bad-line', 3],
    ] as const) {
      const dir = await project(['crlf', bad]);
      const error = await switchEnvironments({transport: 'grpc', projectDir: dir, env: `crlf,${bad}`}).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(EnvParseError);
      expect((error as EnvParseError).message).toContain(`.env.${bad}, line ${line}`);
      expect((error as EnvParseError).exitCode).toBe(1);
      expect(await current(dir, 'crlf')).toBe(await original('crlf'));
      expect(await current(dir, bad)).toBe(await original(bad));
    }
  });

  it('defaults to .env.local and rejects bad names and percents', async () => {
    const dir = await project([]);
    await expect(switchEnvironments({transport: 'grpc', projectDir: dir})).rejects.toThrow(
      /No env file for environment "local"/,
    );
    await expect(switchEnvironments({transport: 'grpc', projectDir: dir, env: '../x'})).rejects.toThrow(
      /not an environment name/,
    );
    await expect(switchEnvironments({transport: 'grpc', projectDir: dir, env: 'local', percent: 140})).rejects.toThrow(
      /0 to 100/,
    );
  });
});
