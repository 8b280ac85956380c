// The hot commands (call, list, describe) without oclif's Config.load: reading its package, manifest and plugins
// is a good part of a short command's start-up (`npm run bench:call`). scripts/build.js bundles this file with those
// commands and the packages they load into dist/lean/, and bin/run.js sends them here unless help is asked for.
import {handle} from '@oclif/core/errors';
import {flush} from '@oclif/core/flush';

/** What of oclif's Config a command reads while it parses and runs (help, which reads the rest, goes to oclif). */
const config = {
  bin: 'tacos',
  userAgent: 'tacos',
  runHook: async () => ({successes: [], failures: []}),
  scopedEnvVar: () => undefined,
  scopedEnvVarKey: (name) => `TACOS_${name}`,
  scopedEnvVarKeys: (name) => [`TACOS_${name}`],
};

/**
 * Runs the command as oclif's execute would: the same class, parser and error handler. Flags or arguments the
 * parser refuses go to `oclif` (nothing ran yet), which prints the error with the command's help as usual.
 */
export async function runLean(Command, id, argv, oclif) {
  Command.id = id;
  try {
    await new Command(argv, config)._run();
    await flush();
  } catch (error) {
    if (error?.parse) return oclif();
    await handle(error);
  }
}
