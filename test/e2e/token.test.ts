/**
 * `tacos token`: run as a user runs it (node bin/run.js, from dist/: `npm run build` first), and the
 * token it prints used on a real gateway, which must accept it.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {runCli} from '../helpers/cli.js';
import type {TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {backendEnv, bearer, send, startStackGateway, startTestMock} from '../helpers/stack.js';

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let gateway: TestGateway | undefined;
/** An empty project: no env file of the repo's can change the secret. */
let project: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'tacos-token-'));
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
  gateway = await startStackGateway(backendEnv(reservation, payment, redis.address), {GRPC_ENABLED: 'false'});
});

afterAll(async () => {
  await gateway?.close();
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
  if (project) await rm(project, {recursive: true, force: true});
});

function claimsOf(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

/** `tacos ARGS` from the empty project, without any JWT settings of the caller's environment. */
function tacos(args: string[], options: {cwd?: string; env?: Record<string, string>} = {}) {
  return runCli(args, {
    cwd: options.cwd ?? project,
    env: {JWT_SECRET: '', SERVER_ENVIRONMENT: '', ...options.env},
    timeoutMs: 20_000,
  });
}

describe('tacos token', () => {
  it('prints a JWT for --user that the gateway accepts (404 for an unknown reservation, not 401)', async () => {
    const result = await tacos(['token', '--user', 'alice']);
    expect(result.code, result.stderr).toBe(0);
    const token = result.stdout.trim();
    expect(token).toMatch(JWT);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    const claims = claimsOf(token);
    expect(claims.sub).toBe('alice');
    // Lives the default hour.
    expect(claims.exp - claims.iat).toBe(3600);
    expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(60);

    const accepted = await send(gateway!.http, 'GET', '/api/v1/reservations/rsv_unknown', {auth: `Bearer ${token}`});
    expect(accepted.status, accepted.text).toBe(404);
    expect(accepted.json.error.code).toBe('NOT_FOUND');

    // The same request with a token the gateway cannot verify is 401: the 404 above was the token's doing.
    const forged = await send(gateway!.http, 'GET', '/api/v1/reservations/rsv_unknown', {
      auth: await bearer('alice', 'not-the-secret'),
    });
    expect(forged.status, forged.text).toBe(401);
    expect(forged.json.error.code).toBe('UNAUTHENTICATED');
  });

  it('--ttl sets the lifetime', async () => {
    const result = await tacos(['token', '--user', 'bob', '--ttl', '15m']);
    expect(result.code, result.stderr).toBe(0);
    const claims = claimsOf(result.stdout.trim());
    expect(claims.sub).toBe('bob');
    expect(claims.exp - claims.iat).toBe(900);
  });

  it('--ttl 0s is a usage error (exit 2) and prints no token', async () => {
    const result = await tacos(['token', '--user', 'alice', '--ttl', '0s']);
    expect(result.code).toBe(2);
    expect(result.stdout).not.toMatch(/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
    expect(result.stderr).toMatch(/ttl/i);
  });

  it('--ttl longer than the gateway accepts (24h, or JWT_MAX_LIFETIME) is a usage error giving the max, and prints no token', async () => {
    const tooLong = await tacos(['token', '--ttl', '100000h']);
    expect(tooLong.code, tooLong.stderr).toBe(2);
    expect(tooLong.stdout).not.toMatch(/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
    expect(tooLong.stderr).toMatch(/--ttl 100000h .*at most 24h/);
    const overEnv = await tacos(['token', '--ttl', '2h'], {env: {JWT_MAX_LIFETIME: '1h'}});
    expect(overEnv.code, overEnv.stderr).toBe(2);
    expect(overEnv.stderr).toMatch(/at most 1h/);
    const fullDay = await tacos(['token', '--ttl', '24h']);
    expect(fullDay.code, fullDay.stderr).toBe(0);
    const claims = claimsOf(fullDay.stdout.trim());
    expect(claims.exp - claims.iat).toBe(86_400);
  });

  it('refuses to make a token for production (exit 1), reading SERVER_ENVIRONMENT from --env prod', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tacos-token-prod-'));
    try {
      await writeFile(
        path.join(dir, '.env.prod'),
        'SERVER_ENVIRONMENT=production\nJWT_SECRET=a-production-secret-of-some-length\n',
      );
      const result = await runCli(['token', '--env', 'prod', '--user', 'alice'], {cwd: dir, timeoutMs: 20_000});
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout).not.toMatch(/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
      expect(result.stderr).toMatch(/production/i);
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });
});
