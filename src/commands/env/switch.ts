import {confirm} from '@inquirer/prompts';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {envFileName} from '../../services/env-file.js';
import {switchEnvironments} from '../../services/env/switch.js';
import {TacosError} from '../../services/errors.js';
import {stateDir} from '../../services/paths.js';
import {describeApplied, settingsBefore, waitUntilTaken} from '../../services/rollout/applied.js';
import {stackGateway} from '../../services/rollout/gateway-status.js';
import {readLiveState} from '../../services/stack/state.js';

export default class EnvSwitch extends TacosCommand {
  static override summary = 'Switch environments to gRPC or HTTP (GRPC_ENABLED), editing only that value.';
  static override description =
    'Sets GRPC_ENABLED to true (grpc) or false (http), and GRPC_TRAFFIC_PERCENT with --percent, in the env files picked (default: .env.local). Only those values change: comments, order, quotes, export prefixes, inline comments, line endings, a BOM, bytes in any encoding and the file mode are kept; a missing key is appended. Files are written atomically, and only when something changes; a switch waits for another one on the same file (TACOS_ENV_LOCK_TIMEOUT, default 10s). A symbolic link is refused unless --follow-links; a file over TACOS_ENV_FILE_MAX_BYTES (default 1 MiB) is refused. Production environments (named prod/production, or SERVER_ENVIRONMENT=production) ask for a confirmation; without a terminal, pass --yes. Nothing is written when any picked file cannot be parsed. When the stack of a switched environment runs here (tacos up), the switch then waits (up to 3 s) for its gateway to reload and says whether it took the values, or why not; not taken is a warning, or a failure with --wait-applied.';
  static override examples = [
    '<%= config.bin %> env switch grpc',
    '<%= config.bin %> env switch grpc --env dev,staging --percent 10 --dry-run',
    '<%= config.bin %> env switch http --all --backup',
    '<%= config.bin %> env switch grpc --env prod --percent 5 --yes',
  ];
  static override args = {
    transport: Args.string({
      description: 'grpc (GRPC_ENABLED=true) or http (GRPC_ENABLED=false).',
      required: true,
      options: ['grpc', 'http'],
    }),
  };
  static override flags = {
    env: Flags.string({
      char: 'e',
      description: 'Environments to switch, comma-separated (default: local, i.e. .env.local).',
      helpValue: 'NAME[,NAME]',
      exclusive: ['all'],
    }),
    all: Flags.boolean({description: 'Switch every environment (.env.<name>, not .env.example).', exclusive: ['env']}),
    percent: Flags.integer({
      description: 'Also set GRPC_TRAFFIC_PERCENT (0-100): the share of backend calls sent over gRPC.',
      min: 0,
      max: 100,
    }),
    'dry-run': Flags.boolean({description: 'Print a diff per file and change nothing.'}),
    yes: Flags.boolean({char: 'y', description: 'Switch production without asking.'}),
    backup: Flags.boolean({description: 'Keep the old file as .env.<name>.bak.'}),
    'follow-links': Flags.boolean({
      description:
        'Edit the file an env file that is a symbolic link points to (the link stays a link); without it, a link is refused.',
    }),
    'wait-applied': Flags.boolean({
      description:
        'Exit 1 when the running gateway of a switched environment did not take the values (by default a warning: the file was written).',
    }),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(EnvSwitch);
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    // Read before the write: "taken" means the gateway reloaded past this.
    const gateway = flags['dry-run'] ? undefined : stackGateway((await readLiveState(stateDir())).state);
    const before = gateway ? await settingsBefore(gateway.url) : undefined;
    const results = await switchEnvironments({
      transport: args.transport as 'grpc' | 'http',
      projectDir: process.cwd(),
      env: flags.env,
      all: flags.all,
      percent: flags.percent,
      dryRun: flags['dry-run'],
      yes: flags.yes,
      backup: flags.backup,
      followLinks: flags['follow-links'],
      confirm: interactive ? (message) => confirm({message, default: false}) : undefined,
    });
    for (const result of results) {
      for (const warning of result.warnings) this.warn(warning);
      const label = envFileName(result.name);
      const set = Object.entries(result.changes)
        .map(([key, value]) => `${key}=${value}`)
        .join(', ');
      if (result.status === 'unchanged') this.log(`${label}: already ${args.transport} (not rewritten)`);
      else if (result.status === 'would-change')
        this.log(`${result.diff}${label}: would set ${set} (dry run, not written)`);
      else this.log(`${label}: changed (${set})${result.backup ? `, old file kept as ${label}.bak` : ''}`);
    }
    const switched = gateway && results.find((result) => result.name === gateway.env && result.status === 'changed');
    if (!gateway || !switched) return;
    const written = {grpcEnabled: args.transport === 'grpc', percent: flags.percent};
    const report = await waitUntilTaken(gateway.url, written, {before});
    const line = describeApplied(envFileName(switched.name), written, report);
    if (report.taken) this.log(line);
    else if (flags['wait-applied']) throw new TacosError(line, {hint: 'The env file was written.', code: 'NOT_TAKEN'});
    else this.warn(line);
  }
}
