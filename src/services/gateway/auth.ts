import {timingSafeEqual} from 'node:crypto';
import {createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey} from 'jose';
import {formatSeconds} from '../config.js';
import {TacosError, errorMessage} from '../errors.js';
import type {AuthSettings} from './config.js';

export interface Principal {
  userId: string;
  /** Unix ms, when the token says. */
  expiresAt?: number;
  scopes: string[];
  claims: JWTPayload;
}

/** Development user of the bypass token. */
export const DEV_USER_ID = 'dev-user';
/** An issuer's clock a little ahead of ours must not push a token of the full lifetime over the cap. */
const CLOCK_TOLERANCE_SECONDS = 60;

/**
 * Bearer-token checks: HS256 tokens signed with JWT_SECRET, RS256/ES256 tokens through
 * JWT_JWKS_ENDPOINT, and, outside production only, the development bypass token.
 */
export class Authenticator {
  private readonly jwks?: JWTVerifyGetKey;

  constructor(private readonly settings: AuthSettings) {
    if (settings.jwksEndpoint) this.jwks = createRemoteJWKSet(new URL(settings.jwksEndpoint));
  }

  /** The principal of an `authorization` header value; UNAUTHENTICATED when there is none. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('A bearer token is required: send "authorization: Bearer <token>".');
    return this.verify(token);
  }

  async verify(token: string): Promise<Principal> {
    const bypass = this.settings.devBypassToken;
    if (bypass && !this.settings.production && sameText(token, bypass)) {
      return {userId: DEV_USER_ID, scopes: ['*'], claims: {sub: DEV_USER_ID}};
    }
    const options = {issuer: this.settings.jwtIssuer, audience: this.settings.jwtAudience};
    let algorithm: string | undefined;
    try {
      algorithm = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated('The bearer token is not a JWT.');
    }
    let payload: JWTPayload | undefined;
    try {
      if (algorithm === 'HS256' && this.settings.jwtSecret) {
        ({payload} = await jwtVerify(token, new TextEncoder().encode(this.settings.jwtSecret), {
          ...options,
          algorithms: ['HS256'],
        }));
      } else if (this.jwks && (algorithm === 'RS256' || algorithm === 'ES256')) {
        ({payload} = await jwtVerify(token, this.jwks, {...options, algorithms: ['RS256', 'ES256']}));
      }
    } catch (error) {
      throw unauthenticated(`The bearer token was refused: ${errorMessage(error)}.`);
    }
    if (!payload) throw unauthenticated(`Tokens signed with ${algorithm ?? 'no algorithm'} are not accepted here.`);
    return this.principalOf(payload);
  }

  private principalOf(payload: JWTPayload): Principal {
    if (!payload.sub) throw unauthenticated('The bearer token has no subject (sub).');
    // A token without exp would be good forever, and a far one nearly so: both are refused.
    if (payload.exp === undefined) throw unauthenticated('The bearer token has no expiry (exp): tokens must expire.');
    const max = this.settings.maxTokenLifetimeSeconds;
    const lifetime = payload.exp - Math.min(payload.iat ?? Infinity, Date.now() / 1000);
    if (lifetime > max + CLOCK_TOLERANCE_SECONDS) {
      throw unauthenticated(
        `The bearer token lives ${formatSeconds(Math.round(lifetime))}: this gateway accepts tokens of at most ${formatSeconds(max)}.`,
      );
    }
    const scope = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
    return {userId: payload.sub, expiresAt: payload.exp * 1000, scopes: scope, claims: payload};
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function unauthenticated(message: string): TacosError {
  return new TacosError(message, {code: 'UNAUTHENTICATED', hint: 'Get a development token with `tacos token`.'});
}
