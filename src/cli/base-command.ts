import {Command} from '@oclif/core/command';
import {TacosError, errorText} from '../services/errors.js';

/** Every tacos command: the one place where errors become output and exit codes. */
export abstract class TacosCommand extends Command {
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof TacosError) {
      process.stderr.write(errorText(error));
      return this.exit(error.exitCode);
    }
    return super.catch(error);
  }
}
