import * as Flags from '@oclif/core/flags';
import {stateDir} from '../services/paths.js';
import {requireGateway} from '../services/rollout/gateway-status.js';
import {readLiveState} from '../services/stack/state.js';
import {envFlag} from './flags.js';

/** The flags that pick the gateway of the rollout commands. */
export const rolloutGatewayFlags = {
  env: envFlag,
  url: Flags.string({
    description: 'The gateway (default: the gateway of the stack running here for --env).',
    helpValue: 'URL',
  }),
};

/** The gateway's HTTP address: --url, else the gateway of the stack running here for --env. */
export async function rolloutGateway(flags: {env?: string; url?: string}): Promise<string> {
  return requireGateway({
    url: flags.url,
    envName: flags.env,
    stack: flags.url ? undefined : (await readLiveState(stateDir())).state,
  });
}
