import type {HttpServer} from '../../server-kit/http/server.js';
import {TacosError} from '../../errors.js';
import type {Authenticator} from '../auth.js';

/** The scope of the tokens that may clear an automatic rollback. */
const ROLLOUT_ADMIN_SCOPE = 'rollout:admin';

export interface RolloutRoutesDeps {
  authenticator: Authenticator;
  /** The status JSON (README, "Rollout status"). */
  status(): Promise<unknown>;
  /** Clears the automatic rollbacks of every gateway process. */
  reset(): Promise<void>;
}

/** GET /api/v1/rollout (public, like /metrics: no addresses in it) and POST /api/v1/rollout/reset. */
export function addRolloutRoutes(app: HttpServer, deps: RolloutRoutesDeps): void {
  app.get('/api/v1/rollout', () => deps.status());
  app.post('/api/v1/rollout/reset', async (request) => {
    const principal = await deps.authenticator.authenticate(request.headers.authorization);
    if (!principal.scopes.includes(ROLLOUT_ADMIN_SCOPE) && !principal.scopes.includes('*')) {
      throw new TacosError(`Clearing a rollback needs a token with the ${ROLLOUT_ADMIN_SCOPE} scope.`, {
        code: 'FORBIDDEN',
      });
    }
    await deps.reset();
    return deps.status();
  });
}
