import {readFile, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {runCli, startCli} from '../helpers/cli.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {FIXTURES, projectWith} from '../env/helpers.js';

let redis: RedisProcess;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await disposeRedis(redis);
  for (const dir of dirs) await rm(dir, {recursive: true, force: true});
});

async function project(names: string[] = []): Promise<string> {
  const dir = await projectWith(names);
  dirs.push(dir);
  return dir;
}
const read = (dir: string, name: string) => readFile(path.join(dir, `.env.${name}`), 'utf8');
const fixture = (name: string) => readFile(path.join(FIXTURES, `${name}.env`), 'utf8');

describe('tacos env (bin/run.js)', () => {
  it('init creates the four files and keeps existing ones; list shows them, flags bad values and masks secrets', async () => {
    const dir = await project();
    await writeFile(
      path.join(dir, '.env.dev'),
      'GRPC_ENABLED=maybe\nGRPC_TRAFFIC_PERCENT=140\nJWT_SECRET=do-not-show\n',
    );
    const init = await runCli(['env', 'init'], {cwd: dir});
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/created \.env\.local/);
    expect(init.stdout).toMatch(/kept +\.env\.dev/);
    expect(await read(dir, 'dev')).toBe('GRPC_ENABLED=maybe\nGRPC_TRAFFIC_PERCENT=140\nJWT_SECRET=do-not-show\n');

    const list = await runCli(['env', 'list'], {cwd: dir});
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^KEY +dev +local +prod +staging$/m);
    expect(list.stdout).toMatch(/^GRPC_ENABLED +maybe ! +true +false +false$/m);
    expect(list.stdout).toMatch(/^GRPC_TRAFFIC_PERCENT +140 ! /m);
    expect(list.stdout).toContain('! .env.dev: GRPC_ENABLED=maybe is not valid: expected true or false.');
    expect(list.stdout).toContain('! .env.dev: GRPC_TRAFFIC_PERCENT=140 is not valid');
    expect(list.stdout + list.stderr).not.toContain('do-not-show');
    const json = await runCli(['env', 'list', '--json'], {cwd: dir});
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      environments: Array<{name: string; values: Record<string, string | null>}>;
    };
    expect(parsed.environments.find((env) => env.name === 'dev')?.values.JWT_SECRET).toBe('****');
    expect(json.stdout).not.toContain('do-not-show');
  });

  it('switch: dry run prints a diff and writes nothing; prod needs --yes; rerun writes nothing; unparsable files are named', async () => {
    const dir = await project(['crlf', 'secret', 'bad-line']);
    await writeFile(path.join(dir, '.env.prod'), '# prod\nSERVER_ENVIRONMENT=production\nGRPC_ENABLED="false"\n');

    const dry = await runCli(['env', 'switch', 'grpc', '--env', 'secret,crlf', '--percent', '20', '--dry-run'], {
      cwd: dir,
    });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('--- a/.env.secret\n+++ b/.env.secret\n');
    expect(dry.stdout).toContain('-GRPC_ENABLED=false\n+GRPC_ENABLED=true\n');
    expect(dry.stdout).toContain('-GRPC_TRAFFIC_PERCENT=0\n+GRPC_TRAFFIC_PERCENT=20\n');
    expect(dry.stdout).not.toMatch(/top-secret|hunter2|tok-123/);
    expect(await read(dir, 'secret')).toBe(await fixture('secret'));
    expect(await read(dir, 'crlf')).toBe(await fixture('crlf'));

    const refused = await runCli(['env', 'switch', 'grpc', '--env', 'crlf,prod'], {cwd: dir});
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(await read(dir, 'crlf')).toBe(await fixture('crlf'));
    expect(await read(dir, 'prod')).toBe('# prod\nSERVER_ENVIRONMENT=production\nGRPC_ENABLED="false"\n');

    const broken = await runCli(['env', 'switch', 'grpc', '--env', 'crlf,bad-line', '--yes'], {cwd: dir});
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('.env.bad-line, line 3');
    expect(await read(dir, 'crlf')).toBe(await fixture('crlf'));

    const accepted = await runCli(['env', 'switch', 'grpc', '--env', 'crlf,prod', '--yes', '--backup'], {cwd: dir});
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toContain('.env.prod: changed (GRPC_ENABLED=true)');
    expect(await read(dir, 'prod')).toBe('# prod\nSERVER_ENVIRONMENT=production\nGRPC_ENABLED="true"\n');
    expect(await read(dir, 'crlf')).toBe(
      (await fixture('crlf')).replace('\r\nGRPC_ENABLED=false\r\n', '\r\nGRPC_ENABLED=true\r\n'),
    );
    expect(await readFile(path.join(dir, '.env.crlf.bak'), 'utf8')).toBe(await fixture('crlf'));

    const before = await stat(path.join(dir, '.env.prod'));
    const rerun = await runCli(['env', 'switch', 'grpc', '--env', 'crlf,prod'], {cwd: dir});
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toContain('.env.prod: already grpc');
    expect((await stat(path.join(dir, '.env.prod'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('a gateway started with a switched env file serves gRPC', async () => {
    const dir = await project();
    expect((await runCli(['env', 'init'], {cwd: dir})).code).toBe(0);
    expect(await read(dir, 'dev')).toContain('\nGRPC_ENABLED=false\n');
    expect((await runCli(['env', 'switch', 'grpc', '--env', 'dev'], {cwd: dir})).code).toBe(0);
    const gateway = startCli(['serve', 'gateway', '--env', 'dev'], {
      cwd: dir,
      env: {SERVER_PORT: '0', GRPC_PORT: '0', REDIS_ADDRESS: redis.address},
    });
    try {
      const ready = await gateway.waitForLine((line) => line.msg === 'gateway listening');
      expect(ready.grpc).toMatch(/^grpc:\/\/127\.0\.0\.1:\d+$/);
      gateway.child.kill('SIGTERM');
      expect(await gateway.exited).toBe(0);
    } finally {
      gateway.kill();
    }
  });
});
