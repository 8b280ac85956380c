import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {envFlag} from '../cli/flags.js';
import {SERVICE_ORDER} from '../services/stack/plan.js';
import {up} from '../services/stack/up.js';

export default class Up extends TacosCommand {
  static override summary =
    'Start the stack: Redis, the reservation and payment mocks, the gateway, and the services of tacos.stack.yaml.';
  static override description =
    'Each service starts only when what it needs is ready (Redis answers PING, a mock answers gRPC health, the gateway /readyz and gRPC health). Ports are checked first: a port in use is named with its holder and nothing starts. In the foreground, the logs of all services follow with a prefix each (also in .tacos/logs/); Ctrl-C stops everything in reverse order. A Redis already answering at REDIS_ADDRESS is reused and never stopped. A tacos.stack.yaml (or .yml) in the project dir adds your own services (command, cwd, env, depends_on, ready, ports), or replaces a built-in of the same name; a bad file is an error naming its line, and nothing starts.';
  static override examples = [
    '<%= config.bin %> up',
    '<%= config.bin %> up --detach --env dev',
    '<%= config.bin %> up --only gateway,redis',
    '<%= config.bin %> up --no-mocks --gateway-cmd "./run_local.sh"',
    '<%= config.bin %> up --restart on-failure',
    '<%= config.bin %> up --stack-file ../stacks/full.yaml',
  ];
  static override flags = {
    env: envFlag,
    detach: Flags.boolean({
      char: 'd',
      description: 'Return once everything is ready; the stack runs in the background.',
    }),
    only: Flags.string({
      description: `Start only these services (comma-separated: ${SERVICE_ORDER.join(', ')}, or the stack file's).`,
      helpValue: 'LIST',
    }),
    'stack-file': Flags.string({
      description: 'The stack file (default: tacos.stack.yaml or tacos.stack.yml in the project dir, if there is one).',
      helpValue: 'PATH',
    }),
    mocks: Flags.boolean({
      description: 'Start the mock backends (--no-mocks: the gateway uses the backend addresses of the env).',
      default: true,
      allowNo: true,
    }),
    'gateway-cmd': Flags.string({
      description: 'Run this shell command as the gateway (same readiness probe), e.g. another gateway build.',
      helpValue: 'CMD',
    }),
    restart: Flags.string({
      description: 'Restart a service that fails (with backoff, up to 5 times).',
      options: ['no', 'on-failure'],
      default: 'no',
    }),
    supervise: Flags.boolean({hidden: true, description: 'Run as the background supervisor of a detached stack.'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Up);
    const only = flags.only?.split(',').map((name) => name.trim());
    const code = await up(
      {
        envName: flags.env,
        only,
        mocks: flags.mocks,
        gatewayCommand: flags['gateway-cmd'],
        stackFile: flags['stack-file'],
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
