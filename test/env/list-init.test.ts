import {readFile, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import dotenv from 'dotenv';
import {afterEach, describe, expect, it} from 'vitest';
import {loadEnvironment} from '../../src/services/config.js';
import {parseEnvDocument} from '../../src/services/env-document.js';
import {listEnvironmentNames} from '../../src/services/env/files.js';
import {initEnvironments, ENV_TEMPLATES_DIR} from '../../src/services/env/init.js';
import {listEnvironments} from '../../src/services/env/list.js';
import {unifiedDiff} from '../../src/services/env/diff.js';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {projectWith} from './helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, {recursive: true, force: true});
});
async function project(names: string[] = []): Promise<string> {
  const dir = await projectWith(names);
  dirs.push(dir);
  return dir;
}

describe('env list (service)', () => {
  it('lists every .env.<name> but .env.example, flags invalid values, masks secrets, and sets unparsable files apart', async () => {
    const dir = await project(['crlf', 'bad-line']);
    await writeFile(path.join(dir, '.env.example'), 'GRPC_ENABLED=maybe\n');
    await writeFile(path.join(dir, '.env.local.bak'), 'GRPC_ENABLED=true\n');
    await writeFile(
      path.join(dir, '.env.weird'),
      'GRPC_ENABLED=maybe\nGRPC_TRAFFIC_PERCENT=140\nGRPC_PORT=70000\nJWT_SECRET=do-not-show\n',
    );
    expect(await listEnvironmentNames(dir)).toEqual(['bad-line', 'crlf', 'weird']);
    const {environments, unreadable} = await listEnvironments(dir);
    expect(environments.map((env) => env.name)).toEqual(['crlf', 'weird']);
    expect(unreadable.map((error) => error.message)).toEqual([
      'Cannot parse .env.bad-line, line 3: not a KEY=value line, a comment or a blank line.',
    ]);
    const weird = environments[1];
    expect(weird.values).toMatchObject({
      GRPC_ENABLED: 'maybe',
      GRPC_TRAFFIC_PERCENT: '140',
      GRPC_PORT: '70000',
      JWT_SECRET: '****',
      BACKEND_PAYMENT_API_BASE_URL: null,
    });
    expect(weird.problems.map((problem) => problem.key)).toEqual(['GRPC_ENABLED', 'GRPC_PORT', 'GRPC_TRAFFIC_PERCENT']);
    expect(JSON.stringify(environments)).not.toContain('do-not-show');
    expect(environments[0].problems).toEqual([]);
  });
});

describe('env init (service)', () => {
  it('creates the four env files from the templates and keeps existing ones', async () => {
    const dir = await project();
    await writeFile(path.join(dir, '.env.dev'), 'GRPC_ENABLED=true # mine\n');
    const results = await initEnvironments(dir);
    expect(results.map((result) => [result.name, result.status])).toEqual([
      ['local', 'created'],
      ['dev', 'kept'],
      ['staging', 'created'],
      ['prod', 'created'],
    ]);
    expect(await readFile(path.join(dir, '.env.dev'), 'utf8')).toBe('GRPC_ENABLED=true # mine\n');
    expect((await initEnvironments(dir)).every((result) => result.status === 'kept')).toBe(true);
  });

  it('ships templates the gateway accepts, with no real secret in prod', async () => {
    for (const name of ['local', 'dev', 'staging', 'prod']) {
      const text = await readFile(path.join(ENV_TEMPLATES_DIR, `${name}.env`), 'utf8');
      parseEnvDocument(Buffer.from(text), name); // parsable by the switch
      const values = dotenv.parse(text);
      expect(values.GRPC_ENABLED).toBe(name === 'local' ? 'true' : 'false');
      if (name === 'prod') expect([values.SERVER_ENVIRONMENT, values.JWT_SECRET]).toEqual(['production', '']);
    }
    const dir = await project();
    await initEnvironments(dir);
    for (const name of ['local', 'dev', 'staging']) {
      expect(readGatewayConfig(loadEnvironment({envName: name, projectDir: dir, processEnv: {}})).auth.production).toBe(
        false,
      );
    }
    expect(
      readGatewayConfig(
        loadEnvironment({envName: 'prod', projectDir: dir, processEnv: {JWT_SECRET: 'from-the-secret-store'}}),
      ).auth.production,
    ).toBe(true);
  });
});

describe('unifiedDiff', () => {
  it('prints hunks with up to 3 lines of context and marks a missing final newline', () => {
    const old = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'].join('\n');
    const at = (search: string, text: string) => ({
      start: old.indexOf(search),
      end: old.indexOf(search) + search.length,
      text,
    });
    expect(unifiedDiff(old, [at('b', 'B'), at('k', 'K')], 'x')).toBe(
      [
        '--- a/x',
        '+++ b/x',
        '@@ -1,5 +1,5 @@',
        ' a',
        '-b',
        '+B',
        ' c',
        ' d',
        ' e',
        '@@ -8,4 +8,4 @@',
        ' h',
        ' i',
        ' j',
        '-k',
        '\\ No newline at end of file',
        '+K',
        '\\ No newline at end of file',
        '',
      ].join('\n'),
    );
    expect(unifiedDiff('a\r\nb', [{start: 4, end: 4, text: '\r\nc'}], 'y')).toBe(
      [
        '--- a/y',
        '+++ b/y',
        '@@ -1,2 +1,3 @@',
        ' a',
        '-b',
        '\\ No newline at end of file',
        '+b',
        '+c',
        '\\ No newline at end of file',
        '',
      ].join('\n'),
    );
    expect(unifiedDiff('', [{start: 0, end: 0, text: 'a\n'}], 'z')).toBe(
      ['--- a/z', '+++ b/z', '@@ -0,0 +1 @@', '+a', ''].join('\n'),
    );
    expect(unifiedDiff('same\n', [], 'z')).toBe('');
  });

  it('prints changed lines that follow each other as one run, and an insertion between lines as added lines', () => {
    const old = 'a\nb\nc\nd\n';
    expect(
      unifiedDiff(
        old,
        [
          {start: 2, end: 3, text: 'B'},
          {start: 4, end: 5, text: 'C'},
          {start: 6, end: 6, text: 'x\n'},
        ],
        'w',
      ),
    ).toBe(['--- a/w', '+++ b/w', '@@ -1,4 +1,5 @@', ' a', '-b', '-c', '+B', '+C', '+x', ' d', ''].join('\n'));
    expect(unifiedDiff(old, [{start: 8, end: 8, text: 'e\n'}], 'w')).toBe(
      ['--- a/w', '+++ b/w', '@@ -2,3 +2,4 @@', ' b', ' c', ' d', '+e', ''].join('\n'),
    );
  });
});
