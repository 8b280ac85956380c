import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {envFlag} from '../cli/flags.js';
import {usageError} from '../services/errors.js';
import {SERVICE_ORDER} from '../services/stack/plan.js';
import type {ServiceName} from '../services/stack/state.js';
import {up} from '../services/stack/up.js';

export default class Up extends TacosCommand {
  static override summary = 'Start the stack: Redis, the reservation and payment mocks, the gateway.';
  static override description =
    'Each service starts only when what it needs is ready (Redis answers PING, a mock answers gRPC health, the gateway /readyz and gRPC health). Ports are checked first: a port in use is named with its holder and nothing starts. In the foreground, the logs of all services follow with a prefix each (also in .tacos/logs/); Ctrl-C stops everything in reverse order. A Redis already answering at REDIS_ADDRESS is reused and never stopped.';
  static override examples = [
    '<%= config.bin %> up',
    '<%= config.bin %> up --detach --env dev',
    '<%= config.bin %> up --only gateway,redis',
    '<%= config.bin %> up --no-mocks --gateway-cmd "./run_local.sh"',
    '<%= config.bin %> up --restart on-failure',
  ];
  static override flags = {
    env: envFlag,
    detach: Flags.boolean({char: 'd', description: 'Return once everything is ready; the stack runs in the background.'}),
    only: Flags.string({description: `Start only these services (comma-separated: ${SERVICE_ORDER.join(', ')}).`, helpValue: 'LIST'}),
    mocks: Flags.boolean({description: 'Start the mock backends (--no-mocks: the gateway uses the backend addresses of the env).', default: true, allowNo: true}),
    'gateway-cmd': Flags.string({description: 'Run this shell command as the gateway (same readiness probe), e.g. another gateway build.', helpValue: 'CMD'}),
    restart: Flags.string({description: 'Restart a service that fails (with backoff, up to 5 times).', options: ['no', 'on-failure'], default: 'no'}),
    supervise: Flags.boolean({hidden: true, description: 'Run as the background supervisor of a detached stack.'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Up);
    const only = flags.only?.split(',').map((name) => name.trim()) as ServiceName[] | undefined;
    const unknown = only?.filter((name) => !SERVICE_ORDER.includes(name));
    if (unknown?.length) throw usageError(`--only: no service ${unknown.join(', ')}.`, `The services are ${SERVICE_ORDER.join(', ')}.`);
    const code = await up(
      {
        envName: flags.env,
        only,
        mocks: flags.mocks,
        gatewayCommand: flags['gateway-cmd'],
        detach: flags.detach,
        supervise: flags.supervise,
        restartOnFailure: flags.restart === 'on-failure',
        // The background supervisor runs with the same command line, in the foreground.
        superviseArgs: this.argv.filter((arg) => arg !== '--detach' && arg !== '-d'),
      },
      {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
        interactive: Boolean(process.stdout.isTTY),
        color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
      },
    );
    if (code !== 0) this.exit(code);
  }
}
