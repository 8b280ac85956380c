import {Command} from '@oclif/core/command';
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
