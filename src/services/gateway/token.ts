import {SignJWT} from 'jose';
import {loadEnvironment} from '../config.js';
import {TacosError, usageError} from '../errors.js';
import {readGatewayConfig} from './config.js';

export interface DevTokenOptions {
  envName?: string;
  userId: string;
  ttlSeconds: number;
}

/** A bearer token the gateway of that environment accepts: HS256 with its JWT_SECRET. */
export async function createDevToken(options: DevTokenOptions): Promise<string> {
  const {auth} = readGatewayConfig(loadEnvironment({envName: options.envName}));
  if (auth.production) {
    throw new TacosError('Development tokens are not made for production (SERVER_ENVIRONMENT=production).', {
      hint: 'Get a token from the identity provider of that environment.',
    });
  }
  if (!auth.jwtSecret) throw new TacosError('JWT_SECRET is empty.', {hint: 'Set JWT_SECRET in the env file.'});
  if (!/^[\w.@:-]{1,128}$/.test(options.userId)) throw usageError(`"${options.userId}" is not a user id: use 1-128 letters, digits, _ . @ : or -.`);
  let token = new SignJWT({scope: 'reservations payments'})
    .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
    .setSubject(options.userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds);
  if (auth.jwtIssuer) token = token.setIssuer(auth.jwtIssuer);
  if (auth.jwtAudience) token = token.setAudience(auth.jwtAudience);
  return token.sign(new TextEncoder().encode(auth.jwtSecret));
}
