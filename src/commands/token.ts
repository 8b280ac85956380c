import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {envFlag} from '../cli/flags.js';
import {parseDurationMs} from '../services/config.js';
import {usageError} from '../services/errors.js';
import {createDevTokens} from '../services/gateway/user-tokens.js';

export default class Token extends TacosCommand {
  static override summary = 'Print a signed development token for local calls.';
  static override description =
    'An HS256 JWT signed with the JWT_SECRET of the environment (a known development secret unless the env file sets one), accepted by the gateway as `authorization: Bearer <token>`. Refused when SERVER_ENVIRONMENT=production, and for a --ttl longer than the gateway accepts (JWT_MAX_LIFETIME, 24h by default).';
  static override examples = [
    '<%= config.bin %> token',
    '<%= config.bin %> token --user alice --ttl 15m',
    'curl -H "authorization: Bearer $(<%= config.bin %> token)" http://127.0.0.1:8000/api/v1/reservations/rsv_1',
  ];
  static override flags = {
    env: envFlag,
    user: Flags.string({char: 'u', description: 'User id (the token subject).', default: 'dev-user'}),
    ttl: Flags.string({
      description: 'Lifetime, such as 30m or 12h; at most JWT_MAX_LIFETIME (24h by default).',
      default: '1h',
    }),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Token);
    const ttlMs = parseDurationMs(flags.ttl);
    if (ttlMs === undefined || ttlMs < 1000)
      throw usageError(`--ttl ${flags.ttl} is not a duration of at least 1s (such as 30m or 12h).`);
    const [token] = await createDevTokens({
      envName: flags.env,
      userIds: [flags.user],
      ttlSeconds: Math.round(ttlMs / 1000),
    });
    this.log(token);
  }
}
