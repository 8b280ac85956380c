import * as Flags from '@oclif/core/flags';
import {usageError} from '../services/errors.js';
import {FAULT_DOORS, type FaultDoor} from '../services/mocks/faults.js';
import {durationFlag, envFlag} from './flags.js';

/** The flags every mock takes. */
export const mockFlags = {
  env: envFlag,
  'http-port': Flags.integer({description: 'HTTP port (0: any free port).', min: 0, max: 65_535}),
  'grpc-port': Flags.integer({description: 'gRPC port (0: any free port).', min: 0, max: 65_535}),
  latency: durationFlag({
    description:
      'Latency added to every call (at the doors of --fault-door); changeable at run time with PUT /admin/faults.',
  }),
  'error-rate': Flags.custom<number>({
    helpValue: '0..1',
    description: 'Share of calls that fail with UNAVAILABLE / 503.',
    parse: async (input) => {
      const rate = Number(input);
      if (!(rate >= 0 && rate <= 1)) throw usageError(`--error-rate ${input} must be a number from 0 to 1.`);
      return rate;
    },
  })(),
  'fault-door': Flags.custom<FaultDoor>({
    description: 'Which door --latency and --error-rate apply to; the other gets none (default both).',
    options: [...FAULT_DOORS],
  })(),
};
