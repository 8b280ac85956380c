import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {EnvReader, loadEnvironment, parseDurationMs} from '../../src/services/config.js';
import {TacosError} from '../../src/services/errors.js';
import {readGatewayConfig} from '../../src/services/gateway/config.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-config-'));
  await writeFile(path.join(dir, '.env.local'), 'GRPC_ENABLED=true\r\nGRPC_PORT=9191 # inline comment\r\n');
  await writeFile(path.join(dir, '.env.staging'), 'export SERVER_ENVIRONMENT="production"\nDEV_BYPASS_TOKEN=letmein\n');
});

afterAll(async () => {
  await rm(dir, {recursive: true, force: true});
});

describe('loadEnvironment', () => {
  it('reads .env.local by default and lets the process environment win', () => {
    const env = loadEnvironment({projectDir: dir, processEnv: {GRPC_PORT: '7000'}});
    expect(env.GRPC_ENABLED).toBe('true');
    expect(env.GRPC_PORT).toBe('7000');
  });

  it('works without .env.local, with gRPC on (the local defaults)', () => {
    expect(loadEnvironment({projectDir: path.join(dir, 'nowhere'), processEnv: {A: '1'}})).toEqual({
      A: '1',
      GRPC_ENABLED: 'true',
    });
  });

  it('refuses a named environment whose file is missing, with a hint', () => {
    expect(() => loadEnvironment({envName: 'dev', projectDir: dir, processEnv: {}})).toThrowError(
      /No env file for environment "dev"/,
    );
  });

  it('reads the file as tacos env does: a line dotenv would skip is an error naming the file and line', async () => {
    await writeFile(path.join(dir, '.env.broken'), 'GRPC_PORT=7001\nthis is not a variable\n');
    expect(() => loadEnvironment({envName: 'broken', projectDir: dir, processEnv: {}})).toThrowError(
      /Cannot parse .*\.env\.broken, line 2/,
    );
  });

  it('refuses a name that is not one (exit code 2)', () => {
    try {
      loadEnvironment({envName: '../etc', projectDir: dir, processEnv: {}});
      expect.unreachable();
    } catch (error) {
      expect((error as TacosError).exitCode).toBe(2);
    }
  });
});

describe('gateway configuration', () => {
  it('has the documented defaults', () => {
    const config = readGatewayConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      httpPort: 8000,
      grpcPort: 9090,
      grpcEnabled: false,
      environment: 'development',
    });
    expect(config.redis).toMatchObject({
      address: 'localhost:6379',
      database: 0,
      clusterMode: false,
      autoPipelining: false,
    });
    expect(config.queue).toMatchObject({
      heartbeatTtlMs: 300_000,
      instantPositions: 10,
      maxAdmissionPosition: 100,
      reservationTokenTtlMs: 30_000,
    });
    expect(config.auth.devBypassToken).toBe('tacos-dev-token');
  });

  it('turns Redis auto-pipelining on with REDIS_AUTO_PIPELINING=true', () => {
    expect(readGatewayConfig({REDIS_AUTO_PIPELINING: 'true'}).redis.autoPipelining).toBe(true);
  });

  it('turns the development bypass off in production, whatever the env file says', () => {
    const config = readGatewayConfig(loadEnvironment({envName: 'staging', projectDir: dir, processEnv: {}}));
    expect(config.auth.production).toBe(true);
    expect(config.auth.devBypassToken).toBeUndefined();
  });

  it.each([
    ['GRPC_ENABLED', 'maybe', 'true or false'],
    ['SERVER_PORT', '70000', 'a whole number from 0 to 65535'],
    ['QUEUE_HEARTBEAT_TTL', 'soon', 'a duration'],
    ['LOG_LEVEL', 'loud', 'fatal, error'],
    ['REDIS_AUTO_PIPELINING', 'sometimes', 'true or false'],
  ])('names %s=%s and what it takes', (name, value, expected) => {
    expect(() => readGatewayConfig({[name]: value})).toThrowError(
      new RegExp(`${name}=${value} is not valid: expected ${expected}`),
    );
  });
});

describe('durations', () => {
  it.each([
    ['600ms', 600],
    ['2s', 2000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['250', 250],
  ])('%s is %i ms', (text, ms) => expect(parseDurationMs(text)).toBe(ms));

  it('rejects other text', () => {
    expect(parseDurationMs('2 weeks')).toBeUndefined();
    expect(() => new EnvReader({T: '-1s'}).durationMs('T', 1)).toThrowError(/T=-1s is not valid/);
  });
});
