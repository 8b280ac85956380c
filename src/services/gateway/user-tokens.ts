import {SignJWT} from 'jose';
import {formatSeconds, loadEnvironment} from '../config.js';
import {TacosError, usageError} from '../errors.js';
import {readGatewayConfig, type AuthSettings} from './config.js';

export interface DevTokenOptions {
  envName?: string;
  userIds: string[];
  ttlSeconds: number;
}

/**
 * Bearer tokens the gateway of that environment accepts, one per user id: HS256 with its JWT_SECRET.
 * The environment is read once, however many users (`tacos bench --users`).
 */
export async function createDevTokens(options: DevTokenOptions): Promise<string[]> {
  const {auth} = readGatewayConfig(loadEnvironment({envName: options.envName}));
  if (auth.production) {
    throw new TacosError('Development tokens are not made for production (SERVER_ENVIRONMENT=production).', {
      hint: 'Get a token from the identity provider of that environment.',
    });
  }
  if (options.ttlSeconds > auth.maxTokenLifetimeSeconds) {
    throw usageError(
      `--ttl ${formatSeconds(options.ttlSeconds)} is longer than the gateway accepts: at most ${formatSeconds(auth.maxTokenLifetimeSeconds)}.`,
      'Give a shorter --ttl, or raise JWT_MAX_LIFETIME in the env file.',
    );
  }
  const bad = options.userIds.find((userId) => !/^[\w.@:-]{1,128}$/.test(userId));
  if (bad !== undefined) throw usageError(`"${bad}" is not a user id: use 1-128 letters, digits, _ . @ : or -.`);
  return Promise.all(
    options.userIds.map((userId) =>
      signWithSecret(auth, {subject: userId, scope: 'reservations payments', ttlSeconds: options.ttlSeconds}),
    ),
  );
}

/** An HS256 token with the environment's JWT_SECRET, issuer and audience: what its gateway accepts. */
export function signWithSecret(
  auth: AuthSettings,
  claims: {subject: string; scope: string; ttlSeconds: number},
): Promise<string> {
  if (!auth.jwtSecret) throw new TacosError('JWT_SECRET is empty.', {hint: 'Set JWT_SECRET in the env file.'});
  let token = new SignJWT({scope: claims.scope})
    .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
    .setSubject(claims.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (auth.jwtIssuer) token = token.setIssuer(auth.jwtIssuer);
  if (auth.jwtAudience) token = token.setAudience(auth.jwtAudience);
  return token.sign(new TextEncoder().encode(auth.jwtSecret));
}

/** Lifetime of the tokens sign-in issues, as the Go gateway's (test/fixtures/contracts/REST.md 1.3). */
const USER_TOKEN_TTL_SECONDS = 86_400;
const GO_ISSUER = 'traffic-tacos-gateway';
const GO_AUDIENCE = 'traffic-tacos-api';

export interface SignedIn {
  userId: string;
  username: string;
  role: string;
}

/**
 * The tokens /auth/register and /auth/login answer: HS256 with JWT_SECRET, no kid, the Go gateway's
 * claims, and JWT_ISSUER / JWT_AUDIENCE when set so that this gateway's own checks accept them.
 * Without JWT_SECRET (production leaves it unset unless told) nothing is signed: a development
 * secret never signs outside development.
 */
export class UserTokens {
  /** Seconds a token lives: a day, or less where JWT_MAX_LIFETIME says so (a longer one would be refused). */
  readonly lifetimeSeconds: number;
  private readonly key?: Uint8Array;
  private readonly issuer: string;
  private readonly audience: string;

  constructor(auth: AuthSettings) {
    if (auth.jwtSecret) this.key = new TextEncoder().encode(auth.jwtSecret);
    this.issuer = auth.jwtIssuer ?? GO_ISSUER;
    this.audience = auth.jwtAudience ?? GO_AUDIENCE;
    this.lifetimeSeconds = Math.min(USER_TOKEN_TTL_SECONDS, auth.maxTokenLifetimeSeconds);
  }

  get canSign(): boolean {
    return this.key !== undefined;
  }

  /** The signing key; 503 without one, checked before any work so that no user is made without a token. */
  requireKey(): Uint8Array {
    if (!this.key)
      throw new TacosError('Sign-in is not available on this gateway: it has no key to sign tokens with.', {
        code: 'UNAVAILABLE',
      });
    return this.key;
  }

  async sign(user: SignedIn): Promise<string> {
    const key = this.requireKey();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({user_id: user.userId, username: user.username, role: user.role})
      .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
      .setSubject(user.userId)
      .setIssuedAt(now)
      .setExpirationTime(now + this.lifetimeSeconds)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .sign(key);
  }
}
