import {loadEnvironment} from '../config.js';
import {readGatewayConfig} from '../gateway/config.js';
import {signWithSecret} from '../gateway/user-tokens.js';

export const ROLLOUT_ADMIN_SCOPE = 'rollout:admin';

/**
 * A one-minute token of scope rollout:admin for the gateway of that environment, signed with its
 * JWT_SECRET like `tacos token` (the operator running this reads the env file anyway).
 */
export function createRolloutAdminToken(envName: string | undefined): Promise<string> {
  const {auth} = readGatewayConfig(loadEnvironment({envName}));
  return signWithSecret(auth, {subject: 'tacos-rollout', scope: ROLLOUT_ADMIN_SCOPE, ttlSeconds: 60});
}
