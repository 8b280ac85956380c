import type {HttpServer} from '../server-kit/http/server.js';
import type {UserTokens} from './user-tokens.js';
import {readCredentials, readRegistration, type User, type UserStore} from './users.js';

export interface AuthRoutesDeps {
  users: UserStore;
  tokens: UserTokens;
}

/** The answer of both routes, with test/fixtures/contracts/REST.md 1.3's fields and JSON types. */
async function signedIn(tokens: UserTokens, user: User) {
  return {
    token: await tokens.sign(user),
    user_id: user.userId,
    username: user.username,
    display_name: user.displayName,
    role: user.role,
    expires_in: tokens.lifetimeSeconds,
  };
}

/** Public sign-in routes: POST /api/v1/auth/register (201) and /api/v1/auth/login (200). */
export function addAuthRoutes(app: HttpServer, deps: AuthRoutesDeps): void {
  app.post('/api/v1/auth/register', async (request, reply) => {
    const registration = readRegistration(request.body);
    deps.tokens.requireKey();
    const user = await deps.users.register(registration);
    reply.code(201);
    return signedIn(deps.tokens, user);
  });

  app.post('/api/v1/auth/login', async (request) => {
    const credentials = readCredentials(request.body);
    deps.tokens.requireKey();
    return signedIn(deps.tokens, await deps.users.authenticate(credentials));
  });
}
