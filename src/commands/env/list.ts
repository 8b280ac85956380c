import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {envFileName} from '../../services/env-file.js';
import {TacosError} from '../../services/errors.js';
import {LISTED_KEYS, listEnvironments} from '../../services/env/list.js';

export default class EnvList extends TacosCommand {
  static override summary = 'Show the gRPC settings of every environment.';
  static override description =
    'A table of the environments (the .env.<name> files of the current directory, not .env.example) by key: GRPC_ENABLED, GRPC_PORT, GRPC_TRAFFIC_PERCENT and the backend addresses. Invalid values are marked with ! and explained below the table; values of secret-looking keys (SECRET, PASSWORD, TOKEN, KEY) are masked. Exits 1 only when a file cannot be parsed.';
  static override examples = ['<%= config.bin %> env list', '<%= config.bin %> env list --json'];
  static override flags = {
    json: Flags.boolean({description: 'Print JSON instead of a table.'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(EnvList);
    const {environments, unreadable} = await listEnvironments(process.cwd());
    if (flags.json) {
      this.log(JSON.stringify({environments, unreadable: unreadable.map((error) => error.message)}, null, 2));
    } else if (environments.length === 0 && unreadable.length === 0) {
      this.log('No environments (.env.<name> files) here. Create them with `tacos env init`.');
    } else if (environments.length > 0) {
      const header = ['KEY', ...environments.map((env) => env.name)];
      const rows = LISTED_KEYS.map(({key}) => [
        key,
        ...environments.map((env) => {
          const value = env.values[key];
          const shown = value === null ? '-' : value === '' ? '""' : JSON.stringify(value).slice(1, -1);
          return env.problems.some((problem) => problem.key === key) ? `${shown} !` : shown;
        }),
      ]);
      const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column].length)));
      for (const row of [header, ...rows])
        this.log(
          row
            .map((cell, column) => cell.padEnd(widths[column]))
            .join('  ')
            .trimEnd(),
        );
      const problems = environments.flatMap((env) =>
        env.problems.map((problem) => `! ${envFileName(env.name)}: ${problem.message}`),
      );
      if (problems.length > 0) this.log(['', ...problems].join('\n'));
    }
    if (unreadable.length > 0) {
      throw new TacosError(unreadable.map((error) => error.message).join('\n'), {
        hint: unreadable[0].hint,
        code: 'ENV_PARSE',
      });
    }
  }
}
