import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {showLogs} from '../services/stack/logs.js';

export default class Logs extends TacosCommand {
  static override summary = 'Show the logs of the stack, or of one service.';
  static override description =
    'The last lines of each service log in .tacos/logs/ (prefixed with the service when several); -f follows new lines until Ctrl-C.';
  static override examples = [
    '<%= config.bin %> logs',
    '<%= config.bin %> logs gateway -f',
    '<%= config.bin %> logs payment -n 200',
  ];
  static override args = {
    service: Args.string({description: 'redis, reservation, payment or gateway (default: all).'}),
  };
  static override flags = {
    follow: Flags.boolean({char: 'f', description: 'Follow new lines.'}),
    lines: Flags.integer({char: 'n', description: 'How many of the last lines.', default: 50, min: 0}),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Logs);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    await showLogs({
      service: args.service,
      lines: flags.lines,
      follow: flags.follow,
      signal: controller.signal,
      onLine: (service, line) => process.stdout.write(args.service ? `${line}\n` : `${service} | ${line}\n`),
    });
  }
}
