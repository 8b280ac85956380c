import * as Flags from '@oclif/core/flags';
import {parseDurationMs} from '../services/config.js';
import {usageError} from '../services/errors.js';

/** Flags several commands share. */

export const envFlag = Flags.string({
  char: 'e',
  description: 'Environment: reads .env.<NAME> from the project directory (default: local).',
  helpValue: 'NAME',
});

/** A duration flag (`50ms`, `2s`) parsed to milliseconds. */
export const durationFlag = Flags.custom<number>({
  helpValue: 'DURATION',
  parse: async (input) => {
    const ms = parseDurationMs(input);
    if (ms === undefined) throw usageError(`"${input}" is not a duration such as 50ms or 2s.`);
    return ms;
  },
});
