/**
 * POST /api/v1/auth/register and /login (test/fixtures/contracts/REST.md 1.3): users in a real redis-server, the gateway in
 * this process on 127.0.0.1:0 calling real mock backends, and the issued tokens tried on the
 * protected REST routes and gRPC methods as a client would.
 */
import * as grpc from '@grpc/grpc-js';
import {Redis} from 'ioredis';
import {SignJWT, decodeJwt, decodeProtectedHeader} from 'jose';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import {UserStore, verifyPassword} from '../../src/services/gateway/users.js';
import {startTestGateway, type TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {
  backendEnv,
  bounded,
  eventually,
  send,
  startStackGateway,
  startTestMock,
  type Answer,
} from '../helpers/stack.js';

const SECRET = 'auth-routes-test-secret-0123456789abcdef';
const EVENT = 'evt_2026_concert';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SEED_WAIT_MS = 15_000;

let redis: RedisProcess | undefined;
let reservation: RunningMock | undefined;
let payment: RunningMock | undefined;
let gateway: TestGateway;
const gateways: TestGateway[] = [];
const clients: Redis[] = [];

/** A gateway on this file's Redis (database `database`) and mocks, ready, closed after the file. */
async function stackGateway(env: Record<string, string>, database = 0): Promise<TestGateway> {
  const started = await startStackGateway(backendEnv(reservation!, payment!, redis!.address), {
    LOG_LEVEL: 'error',
    REDIS_DATABASE: String(database),
    ...env,
  });
  gateways.push(started);
  return started;
}

function redisClient(database = 0): Redis {
  const client = new Redis({port: redis!.port, host: '127.0.0.1', db: database, maxRetriesPerRequest: 1});
  clients.push(client);
  return client;
}

const register = (base: string, body: unknown) => send(base, 'POST', '/api/v1/auth/register', {body});
const login = (base: string, body: unknown) => send(base, 'POST', '/api/v1/auth/login', {body});

/** A username no other test uses (letters and digits, as the web client's form allows). */
let serial = 0;
const uniqueName = (stem: string) => `${stem}${process.pid % 1000}${serial++}`;

function expectSignedIn(answer: Answer, username: string, displayName: string) {
  expect(Object.keys(answer.json).sort()).toEqual([
    'display_name',
    'expires_in',
    'role',
    'token',
    'user_id',
    'username',
  ]);
  expect(answer.json).toMatchObject({username, display_name: displayName, role: 'user', expires_in: 86_400});
  expect(typeof answer.json.token).toBe('string');
  expect(answer.json.user_id).toMatch(UUID_V4);
}

function expectRefused(answer: Answer, status: number, code: string, field?: string) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json.error.code).toBe(code);
  expect(answer.json.error.trace_id).toBe(answer.headers.get('x-request-id'));
  if (field) expect(answer.json.error.field).toBe(field);
}

const availability = (base: string, token: string) =>
  send(base, 'GET', `/api/v1/events/${EVENT}/availability`, {auth: `Bearer ${token}`});

/** GatewayService.GetEventAvailability over gRPC with this bearer token: the status code it ends with. */
async function grpcAvailability(target: TestGateway, token: string): Promise<grpc.status> {
  const client = await contractClient('gateway.v1.GatewayService', target.grpc);
  try {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    return await unaryCall(client, 'GetEventAvailability', {event_id: EVENT}, metadata).then(
      () => grpc.status.OK,
      (error: grpc.ServiceError) => error.code,
    );
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  redis = await startRedis();
  reservation = await startTestMock('reservation');
  payment = await startTestMock('payment');
  gateway = await stackGateway({SERVER_ENVIRONMENT: 'development', JWT_SECRET: SECRET});
});

afterAll(async () => {
  await Promise.allSettled(gateways.map((started) => started.close()));
  for (const client of clients) client.disconnect();
  await Promise.allSettled([reservation?.close(), payment?.close()]);
  await disposeRedis(redis);
});

describe('POST /api/v1/auth/register', () => {
  it('answers 201 with the six fields of test/fixtures/contracts/REST.md 1.3 in their JSON types and a token carrying the Go claims', async () => {
    const username = uniqueName('alice');
    const answer = await register(gateway.http, {
      username,
      password: 'secret-1',
      email: 'alice@example.com',
      display_name: 'Alice A.',
    });
    expect(answer.status, answer.text).toBe(201);
    expectSignedIn(answer, username, 'Alice A.');

    expect(decodeProtectedHeader(answer.json.token)).toEqual({alg: 'HS256', typ: 'JWT'});
    const claims = decodeJwt(answer.json.token);
    expect(claims).toMatchObject({
      sub: answer.json.user_id,
      user_id: answer.json.user_id,
      username,
      role: 'user',
      iss: 'traffic-tacos-gateway',
      aud: 'traffic-tacos-api',
    });
    expect(claims.exp! - claims.iat!).toBe(86_400);
    expect(Math.abs(claims.iat! - Date.now() / 1000)).toBeLessThan(60);
  });

  it('defaults display_name to the username and keeps the email', async () => {
    const username = uniqueName('bob');
    const answer = await register(gateway.http, {username, password: 'secret-2', email: 'bob@example.com'});
    expect(answer.status, answer.text).toBe(201);
    expectSignedIn(answer, username, username);
    expect(await redisClient().hget(`tacos:users:id:${answer.json.user_id}`, 'email')).toBe('bob@example.com');
  });

  it('keeps the password only as a salted scrypt hash: no Redis value holds it', async () => {
    const username = uniqueName('carol');
    const password = 'Correct-Horse-42';
    const first = await register(gateway.http, {username, password, email: 'carol@example.com', display_name: 'Carol'});
    expect(first.status, first.text).toBe(201);
    const store = redisClient();
    const record = await store.hgetall(`tacos:users:id:${first.json.user_id}`);
    expect(Object.values(record).join('\n')).not.toContain(password);
    expect(record.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(await verifyPassword(password, record.password_hash)).toBe(true);
    expect(await verifyPassword('wrong-password', record.password_hash)).toBe(false);
    expect(await store.get(`tacos:users:name:${username}`)).toBe(first.json.user_id);

    // The same password of another user hashes differently: the salt is per user.
    const other = await register(gateway.http, {username: uniqueName('dave'), password, email: 'dave@example.com'});
    expect(await store.hget(`tacos:users:id:${other.json.user_id}`, 'password_hash')).not.toBe(record.password_hash);
  });

  it('refuses a taken username with 409 USERNAME_EXISTS, whatever its case, and the first user stays as it was', async () => {
    const username = uniqueName('erin');
    const first = await register(gateway.http, {username, password: 'first-pw', email: 'erin@example.com'});
    expect(first.status).toBe(201);
    for (const name of [username, username.toUpperCase()]) {
      const again = await register(gateway.http, {username: name, password: 'second-pw', email: 'other@example.com'});
      expectRefused(again, 409, 'USERNAME_EXISTS', 'username');
    }
    expect((await login(gateway.http, {username, password: 'first-pw'})).json.user_id).toBe(first.json.user_id);
    expect((await login(gateway.http, {username, password: 'second-pw'})).status).toBe(401);
  });

  it('of 12 concurrent registrations of one name exactly one is 201 and Redis holds one record for it', async () => {
    const username = uniqueName('frank');
    const answers = await bounded(12, 12, (index) =>
      register(gateway.http, {username, password: `password-${index}`, email: 'f@example.com'}),
    );
    const created = answers.filter((answer) => answer.status === 201);
    expect(created).toHaveLength(1);
    for (const answer of answers.filter((candidate) => candidate.status !== 201))
      expectRefused(answer, 409, 'USERNAME_EXISTS');

    const store = redisClient();
    const records = await store.keys('tacos:users:id:*');
    const names = await Promise.all(records.map((key) => store.hget(key, 'username')));
    expect(names.filter((name) => name === username)).toHaveLength(1);
    const winner = answers.indexOf(created[0]);
    expect((await login(gateway.http, {username, password: `password-${winner}`})).json.user_id).toBe(
      created[0].json.user_id,
    );
  });

  it.each([
    [{password: 'secret-1'}, 'username', /username is required/],
    [{username: 42, password: 'secret-1'}, 'username', /username must be a string/],
    [{username: 'ab', password: 'secret-1'}, 'username', /username must be 3-32 characters/],
    [{username: 'has space', password: 'secret-1'}, 'username', /username must be 3-32 characters/],
    [{username: 'x'.repeat(33), password: 'secret-1'}, 'username', /username must be 3-32 characters/],
    [{username: 'validname'}, 'password', /password is required/],
    [{username: 'validname', password: 123456}, 'password', /password must be a string/],
    [{username: 'validname', password: '12345'}, 'password', /password must be 6-128 characters/],
    [{username: 'validname', password: 'p'.repeat(129)}, 'password', /password must be 6-128 characters/],
    [{username: 'validname', password: 'secret-1', email: 'not-an-address'}, 'email', /email must be an address/],
    [{username: 'validname', password: 'secret-1', email: ['a@b.c']}, 'email', /email must be a string/],
    [{username: 'validname', password: 'secret-1', email: `${'e'.repeat(250)}@x.io`}, 'email', /at most 254/],
    [
      {username: 'validname', password: 'secret-1', display_name: 'd'.repeat(65)},
      'display_name',
      /at most 64 characters/,
    ],
    [{username: 'validname', password: 'secret-1', display_name: 'bell\u0007'}, 'display_name', /control characters/],
  ])('400 INVALID_REQUEST naming the field for %j, and no user is made', async (body, field, message) => {
    const answer = await register(gateway.http, body);
    expectRefused(answer, 400, 'INVALID_REQUEST', field);
    expect(answer.json.error.message).toMatch(message);
    expect(await redisClient().exists('tacos:users:name:validname')).toBe(0);
  });

  it('400 INVALID_REQUEST for a body that is not a JSON object, or no body at all', async () => {
    for (const body of [[], 'text', null]) {
      const answer = await register(gateway.http, body);
      expectRefused(answer, 400, 'INVALID_REQUEST');
      expect(answer.json.error.message).toMatch(/JSON object with username, password/);
    }
    expectRefused(await send(gateway.http, 'POST', '/api/v1/auth/register'), 400, 'INVALID_REQUEST');
  });
});

describe('POST /api/v1/auth/login', () => {
  let username: string;
  let userId: string;
  const password = 'login-pw-1';

  beforeAll(async () => {
    username = uniqueName('grace');
    const created = await register(gateway.http, {
      username,
      password,
      email: 'grace@example.com',
      display_name: 'Grace H.',
    });
    expect(created.status, created.text).toBe(201);
    userId = created.json.user_id;
  });

  it('answers 200 with the same six fields, the registered user, and its name in any case', async () => {
    for (const name of [username, username.toUpperCase()]) {
      const answer = await login(gateway.http, {username: name, password});
      expect(answer.status, answer.text).toBe(200);
      expectSignedIn(answer, username, 'Grace H.');
      expect(answer.json.user_id).toBe(userId);
      expect(decodeJwt(answer.json.token).sub).toBe(userId);
    }
  });

  it('a wrong password and an unknown user get the same 401 INVALID_CREDENTIALS body', async () => {
    const wrong = await login(gateway.http, {username, password: 'not-the-password'});
    const unknown = await login(gateway.http, {username: uniqueName('nobody'), password});
    for (const answer of [wrong, unknown]) {
      expectRefused(answer, 401, 'INVALID_CREDENTIALS');
      expect(answer.json.error.message).toBe('Invalid username or password');
    }
    const withoutTrace = (answer: Answer) => ({...answer.json.error, trace_id: undefined});
    expect(withoutTrace(wrong)).toEqual(withoutTrace(unknown));
  });

  it.each([
    [{password: 'x'}, 'username', /username is required/],
    [{username: '', password: 'x'}, 'username', /username is required/],
    [{username: ['grace'], password: 'x'}, 'username', /username must be a string/],
    [{username: 'g'.repeat(129), password: 'x'}, 'username', /at most 128 characters/],
    [{username: 'grace'}, 'password', /password is required/],
    [{username: 'grace', password: 12}, 'password', /password must be a string/],
    [{username: 'grace', password: 'p'.repeat(129)}, 'password', /at most 128 characters/],
  ])('400 INVALID_REQUEST naming the field for %j', async (body, field, message) => {
    const answer = await login(gateway.http, body);
    expectRefused(answer, 400, 'INVALID_REQUEST', field);
    expect(answer.json.error.message).toMatch(message);
  });
});

describe('the tokens sign-in issues', () => {
  let token: string;

  beforeAll(async () => {
    const created = await register(gateway.http, {
      username: uniqueName('heidi'),
      password: 'token-pw-1',
      email: 'heidi@example.com',
    });
    token = created.json.token;
  });

  it('pass a protected REST route, which answers 401 without one', async () => {
    expect((await availability(gateway.http, token)).status).toBe(200);
    expect((await send(gateway.http, 'GET', `/api/v1/events/${EVENT}/availability`)).status).toBe(401);
  });

  it('pass a protected gRPC method, which is UNAUTHENTICATED without one', async () => {
    expect(await grpcAvailability(gateway, token)).toBe(grpc.status.OK);
    expect(await grpcAvailability(gateway, 'not-a-token')).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('carry JWT_ISSUER and JWT_AUDIENCE when they are set, so that the gateway that checks them accepts them', async () => {
    const checking = await stackGateway({
      SERVER_ENVIRONMENT: 'development',
      JWT_SECRET: SECRET,
      JWT_ISSUER: 'tacos-tests',
      JWT_AUDIENCE: 'tacos-web',
    });
    const answer = await login(checking.http, {username: decodeJwt(token).username, password: 'token-pw-1'});
    expect(answer.status, answer.text).toBe(200);
    expect(decodeJwt(answer.json.token)).toMatchObject({iss: 'tacos-tests', aud: 'tacos-web'});
    expect((await availability(checking.http, answer.json.token)).status).toBe(200);
    expect(await grpcAvailability(checking, answer.json.token)).toBe(grpc.status.OK);
    // A token with the Go defaults is not one this gateway's issuer made.
    expect((await availability(checking.http, token)).status).toBe(401);
  });

  it('are refused (401 / UNAUTHENTICATED) once expired', async () => {
    const claims = decodeJwt(token);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({user_id: claims.user_id, username: claims.username, role: 'user'})
      .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
      .setSubject(claims.sub!)
      .setIssuer('traffic-tacos-gateway')
      .setAudience('traffic-tacos-api')
      .setIssuedAt(now - 2 * 86_400)
      .setExpirationTime(now - 86_400)
      .sign(new TextEncoder().encode(SECRET));
    expectRefused(await availability(gateway.http, expired), 401, 'UNAUTHENTICATED');
    expect(await grpcAvailability(gateway, expired)).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('are refused (401 / UNAUTHENTICATED) without an expiry (exp), on both doors, saying so', async () => {
    const claims = decodeJwt(token);
    const forever = await new SignJWT({user_id: claims.user_id, username: claims.username, role: 'user'})
      .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
      .setSubject(claims.sub!)
      .setIssuer('traffic-tacos-gateway')
      .setAudience('traffic-tacos-api')
      .setIssuedAt()
      .sign(new TextEncoder().encode(SECRET));
    const answer = await availability(gateway.http, forever);
    expectRefused(answer, 401, 'UNAUTHENTICATED');
    expect(answer.json.error.message).toMatch(/no expiry \(exp\)/);
    expect(await grpcAvailability(gateway, forever)).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('are refused (401 / UNAUTHENTICATED) when they live longer than the 24 h cap, however iat is set', async () => {
    const claims = decodeJwt(token);
    const now = Math.floor(Date.now() / 1000);
    const signed = (iat: number, exp: number) =>
      new SignJWT({user_id: claims.user_id, username: claims.username, role: 'user'})
        .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
        .setSubject(claims.sub!)
        .setIssuer('traffic-tacos-gateway')
        .setAudience('traffic-tacos-api')
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode(SECRET));
    const tooLong = await signed(now, now + 25 * 3600);
    // An iat in the future does not shorten the time the token is good for from now.
    const lateIat = await signed(now + 30 * 86_400, now + 30 * 86_400 + 3600);
    for (const refused of [tooLong, lateIat]) {
      const answer = await availability(gateway.http, refused);
      expectRefused(answer, 401, 'UNAUTHENTICATED');
      expect(answer.json.error.message).toMatch(/at most 24h/);
      expect(await grpcAvailability(gateway, refused)).toBe(grpc.status.UNAUTHENTICATED);
    }
    // The full day sign-in issues is accepted.
    const fullDay = await signed(now, now + 86_400);
    expect((await availability(gateway.http, fullDay)).status).toBe(200);
    expect(await grpcAvailability(gateway, fullDay)).toBe(grpc.status.OK);
  });

  it('live JWT_MAX_LIFETIME when it is shorter than a day, and the gateway that set it accepts them', async () => {
    const shorter = await stackGateway({SERVER_ENVIRONMENT: 'development', JWT_SECRET: SECRET, JWT_MAX_LIFETIME: '1h'});
    const answer = await login(shorter.http, {username: decodeJwt(token).username, password: 'token-pw-1'});
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.expires_in).toBe(3600);
    const claims = decodeJwt(answer.json.token);
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect((await availability(shorter.http, answer.json.token)).status).toBe(200);
    // A token of a full day is over this gateway's cap.
    expect((await availability(shorter.http, token)).status).toBe(401);
  });

  it('are refused (401 / UNAUTHENTICATED) when tampered with: another subject, or another signature', async () => {
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const otherUser = Buffer.from(JSON.stringify({...claims, sub: 'someone-else', user_id: 'someone-else'})).toString(
      'base64url',
    );
    const flipped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
    for (const tampered of [`${header}.${otherUser}.${signature}`, `${header}.${payload}.${flipped}`]) {
      expectRefused(await availability(gateway.http, tampered), 401, 'UNAUTHENTICATED');
      expect(await grpcAvailability(gateway, tampered)).toBe(grpc.status.UNAUTHENTICATED);
    }
  });
});

describe('the development users', () => {
  const loginWorks = async (target: TestGateway, username: string, password: string) => {
    const answer = await login(target.http, {username, password});
    return answer.status === 200 ? answer : undefined;
  };

  it('user01..user10 (pwd01..pwd10, "User 01".."User 10") can log in in development', async () => {
    const last = await eventually('user10 seeded', () => loginWorks(gateway, 'user10', 'pwd10'), SEED_WAIT_MS);
    expectSignedIn(last, 'user10', 'User 10');
    for (let index = 1; index <= 10; index += 1) {
      const number = String(index).padStart(2, '0');
      const answer = await login(gateway.http, {username: `user${number}`, password: `pwd${number}`});
      expect(answer.status, `user${number}: ${answer.text}`).toBe(200);
      expect(answer.json.display_name).toBe(`User ${number}`);
    }
  });

  it('are seeded once: another start keeps their ids, and a user who took one of the names keeps it', async () => {
    const database = 2;
    // Someone registered user03 before the first development start on this Redis.
    const direct = redisClient(database);
    const own = await new UserStore(direct).register({
      username: 'user03',
      password: 'my-own-pw',
      email: '',
      displayName: 'Mine',
    });

    const first = await stackGateway({SERVER_ENVIRONMENT: 'local', JWT_SECRET: SECRET}, database);
    const before = await eventually('user10 seeded', () => loginWorks(first, 'user10', 'pwd10'), SEED_WAIT_MS);
    const second = await stackGateway({SERVER_ENVIRONMENT: 'test', JWT_SECRET: SECRET}, database);
    const user01 = await eventually('user01 answers', () => loginWorks(second, 'user01', 'pwd01'), SEED_WAIT_MS);
    expect((await login(second.http, {username: 'user10', password: 'pwd10'})).json.user_id).toBe(before.json.user_id);
    expect((await login(first.http, {username: 'user01', password: 'pwd01'})).json.user_id).toBe(user01.json.user_id);

    expect((await login(second.http, {username: 'user03', password: 'pwd03'})).status).toBe(401);
    const mine = await login(second.http, {username: 'user03', password: 'my-own-pw'});
    expect(mine.json).toMatchObject({user_id: own.userId, display_name: 'Mine'});
    expect(await direct.keys('tacos:users:name:*')).toHaveLength(10);
  });

  it('are seeded when Redis comes back, when it was away at the start', async () => {
    const late = await startRedis();
    try {
      await late.stop();
      const started = await startTestGateway({
        ...backendEnv(reservation!, payment!, late.address),
        LOG_LEVEL: 'error',
        SERVER_ENVIRONMENT: 'development',
        JWT_SECRET: SECRET,
      });
      gateways.push(started);
      expectRefused(await login(started.http, {username: 'user01', password: 'pwd01'}), 503, 'UNAVAILABLE');
      await late.restart();
      const answer = await eventually(
        'user01 seeded after Redis came back',
        () => loginWorks(started, 'user01', 'pwd01'),
        SEED_WAIT_MS,
      );
      expectSignedIn(answer, 'user01', 'User 01');
      await started.close();
    } finally {
      await disposeRedis(late);
    }
  });

  it('do not exist in production, where registering and logging in still work with JWT_SECRET', async () => {
    const database = 3;
    const production = await stackGateway({SERVER_ENVIRONMENT: 'production', JWT_SECRET: SECRET}, database);
    const username = uniqueName('ivan');
    const created = await register(production.http, {username, password: 'prod-pw-1', email: 'ivan@example.com'});
    expect(created.status, created.text).toBe(201);
    expect((await availability(production.http, created.json.token)).status).toBe(200);
    expectRefused(await login(production.http, {username: 'user01', password: 'pwd01'}), 401, 'INVALID_CREDENTIALS');
    expect(await redisClient(database).keys('tacos:users:name:*')).toEqual([`tacos:users:name:${username}`]);
  });

  it('production without JWT_SECRET or JWT_JWKS_ENDPOINT refuses to start, naming both', async () => {
    const starting = stackGateway({SERVER_ENVIRONMENT: 'production'}, 4);
    await expect(starting).rejects.toThrow(/SERVER_ENVIRONMENT=production needs JWT_SECRET or JWT_JWKS_ENDPOINT/);
    await expect(starting).rejects.toMatchObject({code: 'INVALID_CONFIG'});
  });

  it('production with the public development secret refuses to start', async () => {
    await expect(stackGateway({SERVER_ENVIRONMENT: 'production', JWT_SECRET: 'tacos-dev-secret'}, 4)).rejects.toThrow(
      /public development secret/,
    );
  });

  it('production with JWKS only signs nothing: 503, and no user is made', async () => {
    const database = 4;
    // Never fetched: no RS256 token is sent here.
    const production = await stackGateway(
      {SERVER_ENVIRONMENT: 'production', JWT_JWKS_ENDPOINT: 'http://127.0.0.1:9/jwks.json'},
      database,
    );
    const answer = await register(production.http, {
      username: uniqueName('judy'),
      password: 'prod-pw-2',
      email: 'judy@example.com',
    });
    expectRefused(answer, 503, 'UNAVAILABLE');
    expect(answer.json.error.message).not.toMatch(/tacos-dev-secret|JWT_SECRET/);
    expectRefused(await login(production.http, {username: 'user01', password: 'pwd01'}), 503, 'UNAVAILABLE');
    expect(await redisClient(database).keys('tacos:users:*')).toEqual([]);
  });
});
