import {TacosCommand} from '../../cli/base-command.js';
import {envFileName} from '../../services/env-file.js';
import {initEnvironments} from '../../services/env/init.js';

export default class EnvInit extends TacosCommand {
  static override summary = 'Create .env.local, .env.dev, .env.staging and .env.prod from templates.';
  static override description =
    'Creates the env files that are missing in the current directory (the project root), from templates/env/. An existing file is never overwritten. The templates hold placeholders only: the prod JWT_SECRET is left empty, to be set from a secret store.';
  static override examples = ['<%= config.bin %> env init'];

  async run(): Promise<void> {
    await this.parse(EnvInit);
    for (const result of await initEnvironments(process.cwd())) {
      this.log(
        `${result.status === 'created' ? 'created' : 'kept   '} ${envFileName(result.name)}${result.status === 'kept' ? ' (exists, not changed)' : ''}`,
      );
    }
  }
}
