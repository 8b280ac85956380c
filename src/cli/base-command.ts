import {Command, Flags} from '@oclif/core';
import {TacosError} from '../services/errors.js';

/** Every tacos command: the one place where errors become output and exit codes. */
export abstract class TacosCommand extends Command {
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof TacosError) {
      process.stderr.write(`Error: ${error.message}\n${error.hint ? `Hint: ${error.hint}\n` : ''}`);
      return this.exit(error.exitCode);
    }
    return super.catch(error);
  }
}

export const envFlag = Flags.string({
  char: 'e',
  description: 'Environment: reads .env.<NAME> from the project directory (default: local).',
  helpValue: 'NAME',
});
