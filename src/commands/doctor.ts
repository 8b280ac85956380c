import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {envFlag} from '../cli/flags.js';
import {doctor} from '../services/stack/doctor.js';

export default class Doctor extends TacosCommand {
  static override summary = 'Check what `tacos up` needs, with fixes.';
  static override description =
    'Node version, Redis (answering at REDIS_ADDRESS, or redis-server installed), free ports, proto/ compiles, env files valid, the stack file valid. Exit code 1 when a check fails.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --env dev'];
  static override flags = {
    env: envFlag,
    'stack-file': Flags.string({
      description:
        'The stack file to check (default: tacos.stack.yaml or tacos.stack.yml in the project dir, if there is one).',
      helpValue: 'PATH',
    }),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Doctor);
    const checks = await doctor(flags.env, flags['stack-file']);
    const width = Math.max(...checks.map((check) => check.name.length));
    for (const check of checks) {
      this.log(
        `${check.ok ? 'pass' : 'FAIL'}  ${check.name.padEnd(width)}  ${check.detail}${check.fix ? `\n      ${' '.repeat(width)}  fix: ${check.fix}` : ''}`,
      );
    }
    if (checks.some((check) => !check.ok)) this.exit(1);
  }
}
