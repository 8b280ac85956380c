import {randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions} from 'node:crypto';
import type {Logger} from '../logging.js';
import type {RedisClient} from '../redis/client.js';
import {TacosError, errorMessage} from '../errors.js';

/** A user as the auth routes answer it (test/fixtures/contracts/REST.md 1.3); the password hash never leaves this file. */
export interface User {
  userId: string;
  username: string;
  displayName: string;
  role: string;
}

export interface Registration {
  username: string;
  password: string;
  email: string;
  displayName: string;
}

export interface Credentials {
  username: string;
  password: string;
}

// Bounds on what a client may make Redis keep. The web client's own rules (username 3-20 letters
// and digits, password 6+) all pass; `_ . -` are allowed too, for the names scripts make up.
const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
/** Login reads a name only to look it up; beyond this no registered name can match, so it is a bad request. */
const LOGIN_USERNAME_MAX = 128;
const PASSWORD_MIN = 6;
const PASSWORD_MAX = 128;
const DISPLAY_NAME_MAX = 64;
const EMAIL_MAX = 254;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
// eslint-disable-next-line no-control-regex -- finding control characters is what it is for
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** The body of POST /auth/register, checked; a bad field is INVALID_REQUEST naming it. */
export function readRegistration(body: unknown): Registration {
  const fields = bodyObject(body, 'username, password, email and display_name');
  const username = requiredText(fields, 'username');
  if (!USERNAME.test(username))
    throw invalidRequest('username', 'username must be 3-32 characters: letters, digits, _ . or -.');
  const password = requiredText(fields, 'password');
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    throw invalidRequest('password', `password must be ${PASSWORD_MIN}-${PASSWORD_MAX} characters.`);
  }
  const email = optionalText(fields, 'email').trim();
  if (email && (email.length > EMAIL_MAX || !EMAIL.test(email))) {
    throw invalidRequest('email', `email must be an address like name@example.com, at most ${EMAIL_MAX} characters.`);
  }
  const displayName = optionalText(fields, 'display_name').trim();
  if (displayName.length > DISPLAY_NAME_MAX || CONTROL_CHARACTERS.test(displayName)) {
    throw invalidRequest(
      'display_name',
      `display_name must be at most ${DISPLAY_NAME_MAX} characters, without control characters.`,
    );
  }
  return {username, password, email, displayName: displayName || username};
}

/** The body of POST /auth/login, checked for shape and size only: a wrong name is a wrong credential. */
export function readCredentials(body: unknown): Credentials {
  const fields = bodyObject(body, 'username and password');
  const username = requiredText(fields, 'username');
  const password = requiredText(fields, 'password');
  if (username.length > LOGIN_USERNAME_MAX)
    throw invalidRequest('username', `username must be at most ${LOGIN_USERNAME_MAX} characters.`);
  if (password.length > PASSWORD_MAX)
    throw invalidRequest('password', `password must be at most ${PASSWORD_MAX} characters.`);
  return {username, password};
}

function bodyObject(body: unknown, expected: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TacosError(`The body must be a JSON object with ${expected}.`, {code: 'INVALID_REQUEST'});
  }
  return body as Record<string, unknown>;
}

function requiredText(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (value === undefined || value === null || value === '') throw invalidRequest(name, `${name} is required.`);
  if (typeof value !== 'string') throw invalidRequest(name, `${name} must be a string.`);
  return value;
}

function optionalText(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalidRequest(name, `${name} must be a string.`);
  return value;
}

function invalidRequest(field: string, message: string): TacosError {
  return new TacosError(message, {code: 'INVALID_REQUEST', field});
}

// scrypt with node's default cost (16 MiB, about 70 ms on one core). The parameters are stored with
// each hash, so raising them later leaves the hashes made before verifiable.
const SCRYPT = {N: 16_384, r: 8, p: 1};
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Stored form: scrypt$N$r$p$salt$key, salt and key in base64url. */
const STORED_HASH = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([\w-]{16,64})\$([\w-]{32,128})$/;

function derive(
  password: string,
  salt: Buffer,
  keyBytes: number,
  cost: {N: number; r: number; p: number},
): Promise<Buffer> {
  // maxmem: node refuses above 32 MiB by default; allow what these parameters need, with room.
  const options: ScryptOptions = {...cost, maxmem: 256 * cost.N * cost.r};
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, keyBytes, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether `password` is the one `stored` was made from; false for a hash this code cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = STORED_HASH.exec(stored);
  if (!match) return false;
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Bounds, so a damaged record cannot make one login take a gigabyte or a minute.
  if (N < 2 || N > 1_048_576 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || N * r * p > 2 ** 22) return false;
  const expected = Buffer.from(match[5], 'base64url');
  const key = await derive(password, Buffer.from(match[4], 'base64url'), expected.length, {N, r, p});
  return timingSafeEqual(key, expected);
}

const KEY_PREFIX = 'tacos:users:';
/** Usernames are unique whatever their case: "User01" cannot be registered beside "user01". */
const usernameKey = (username: string) => `${KEY_PREFIX}name:${username.toLowerCase()}`;
const userKey = (userId: string) => `${KEY_PREFIX}id:${userId}`;

const ROLE = 'user';

/**
 * Users in the gateway's Redis: `tacos:users:name:<lowercase name>` holds the user id,
 * `tacos:users:id:<user id>` a hash with the record (password only as its scrypt hash). The two
 * keys need no shared slot, so this works on Redis Cluster too.
 */
export class UserStore {
  /** What an unknown username is checked against, so it answers no faster than a wrong password. */
  private readonly dummyHash = hashPassword(randomUUID());

  constructor(private readonly redis: RedisClient) {}

  /**
   * Adds a user. The name is claimed with SET NX after the record is written, so of two concurrent
   * registrations of one name exactly one wins; the loser removes its record.
   */
  async register(registration: Registration): Promise<User> {
    const nameKey = usernameKey(registration.username);
    // Checked first so that a taken name costs no hashing; the SET NX below is what decides.
    if ((await this.guard(() => this.redis.exists(nameKey))) === 1) throw usernameTaken(registration.username);
    const user: User = {
      userId: randomUUID(),
      username: registration.username,
      displayName: registration.displayName,
      role: ROLE,
    };
    const now = new Date().toISOString();
    const record = {
      user_id: user.userId,
      username: user.username,
      display_name: user.displayName,
      email: registration.email,
      role: user.role,
      password_hash: await hashPassword(registration.password),
      created_at: now,
      updated_at: now,
    };
    const recordKey = userKey(user.userId);
    await this.guard(() => this.redis.hset(recordKey, record));
    const claimed = await this.guard(() => this.redis.set(nameKey, user.userId, 'NX')).catch(async (error: unknown) => {
      await this.redis.del(recordKey).catch(() => undefined);
      throw error;
    });
    if (claimed !== 'OK') {
      await this.guard(() => this.redis.del(recordKey));
      throw usernameTaken(registration.username);
    }
    return user;
  }

  /** The user these credentials are of; INVALID_CREDENTIALS, alike for an unknown name and a wrong password. */
  async authenticate(credentials: Credentials): Promise<User> {
    const userId = await this.guard(() => this.redis.get(usernameKey(credentials.username)));
    // An unknown name reads a record too (one that cannot exist), so both paths make the same round trips.
    const record = await this.guard(() => this.redis.hgetall(userKey(userId ?? 'none')));
    const hash = record.password_hash;
    const matches = await verifyPassword(credentials.password, hash ?? (await this.dummyHash));
    if (!hash || !matches) throw new TacosError('Invalid username or password', {code: 'INVALID_CREDENTIALS'});
    return {
      userId: record.user_id,
      username: record.username,
      displayName: record.display_name,
      role: record.role || ROLE,
    };
  }

  /** Redis being away is the client's 503, without the library's words. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof TacosError) throw error;
      throw new TacosError('The user store is unavailable; try again shortly.', {code: 'UNAVAILABLE', cause: error});
    }
  }
}

function usernameTaken(username: string): TacosError {
  return new TacosError(`The username ${username} is already taken; choose another.`, {
    code: 'USERNAME_EXISTS',
    field: 'username',
  });
}

/** The test users the web client's login page hints at: user01..user10 with passwords pwd01..pwd10. */
export const DEVELOPMENT_USERS: Registration[] = Array.from({length: 10}, (_, index) => {
  const number = String(index + 1).padStart(2, '0');
  return {
    username: `user${number}`,
    password: `pwd${number}`,
    email: `user${number}@example.com`,
    displayName: `User ${number}`,
  };
});

/**
 * Adds the development users that are missing (an existing user is left as it is). When Redis is
 * away, it tries again each time the client reconnects, until one pass completes or `signal` aborts.
 */
export function seedDevelopmentUsers(store: UserStore, redis: RedisClient, logger: Logger, signal: AbortSignal): void {
  // The listener: seed catches its own errors, so its promise never rejects.
  const onReady = () => void seed();
  const seed = async () => {
    redis.off('ready', onReady);
    try {
      for (const user of DEVELOPMENT_USERS) {
        if (signal.aborted) return;
        await store.register(user).catch((error: unknown) => {
          if (!(error instanceof TacosError && error.code === 'USERNAME_EXISTS')) throw error;
        });
      }
      logger.debug({users: DEVELOPMENT_USERS.length}, 'development users present');
    } catch (error) {
      if (signal.aborted) return;
      logger.debug(
        {err: errorMessage(error)},
        'development users not seeded yet: Redis unavailable, retrying when it is back',
      );
      redis.on('ready', onReady);
    }
  };
  if (redis.status === 'ready') void seed();
  else redis.on('ready', onReady);
}
