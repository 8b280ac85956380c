#!/usr/bin/env node
import {execute} from '@oclif/core/execute';

// grpc-js sends an IP address as TLS SNI (127.0.0.1), which Node flags as DEP0123 on stderr.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === 'object' ? rest[0]?.code : rest[1];
  if (code === 'DEP0123') return;
  return emitWarning.call(process, warning, ...rest);
};

await execute({dir: import.meta.url});
