import {SignJWT} from 'jose';
import {loadEnvironment} from '../config.js';
import {TacosError} from '../errors.js';
import {readGatewayConfig} from '../gateway/config.js';

export const ROLLOUT_ADMIN_SCOPE = 'rollout:admin';

/**
 * A short-lived token of scope rollout:admin for the gateway of that environment, signed like
 * `tacos token` with its JWT_SECRET (the operator running this reads the env file anyway).
 */
export async function createRolloutAdminToken(envName: string | undefined): Promise<string> {
  const {auth} = readGatewayConfig(loadEnvironment({envName}));
  if (!auth.jwtSecret) throw new TacosError('JWT_SECRET is empty.', {hint: 'Set JWT_SECRET in the env file.'});
  let token = new SignJWT({scope: ROLLOUT_ADMIN_SCOPE})
    .setProtectedHeader({alg: 'HS256', typ: 'JWT'})
    .setSubject('tacos-rollout')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 60);
  if (auth.jwtIssuer) token = token.setIssuer(auth.jwtIssuer);
  if (auth.jwtAudience) token = token.setAudience(auth.jwtAudience);
  return token.sign(new TextEncoder().encode(auth.jwtSecret));
}
