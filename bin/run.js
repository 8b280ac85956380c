#!/usr/bin/env node
import {existsSync} from 'node:fs';

// grpc-js sends an IP address as TLS SNI (127.0.0.1), which Node flags as DEP0123 on stderr.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === 'object' ? rest[0]?.code : rest[1];
  if (code === 'DEP0123') return;
  return emitWarning.call(process, warning, ...rest);
};

const oclif = async () => (await import('@oclif/core/execute')).execute({dir: import.meta.url});

// The hot commands (those scripts/build.js made a lean bundle of) start without oclif's config (bin/lean.js);
// --help (before a `--`) is oclif's.
const [id, ...argv] = process.argv.slice(2);
const lean = /^[a-z]+$/.test(id ?? '') && new URL(`../dist/lean/commands/${id}.js`, import.meta.url);
const dashes = argv.indexOf('--');
if (lean && existsSync(lean) && !(dashes === -1 ? argv : argv.slice(0, dashes)).includes('--help')) {
  const [{runLean}, {default: Command}] = await Promise.all([import('../dist/lean/run.js'), import(lean)]);
  await runLean(Command, id, argv, oclif);
} else {
  await oclif();
}
