#!/usr/bin/env node
// grpc-js sends an IP address as TLS SNI (127.0.0.1), which Node flags as DEP0123 on stderr.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === 'object' ? rest[0]?.code : rest[1];
  if (code === 'DEP0123') return;
  return emitWarning.call(process, warning, ...rest);
};

const oclif = async () => (await import('@oclif/core/execute')).execute({dir: import.meta.url});

// The hot commands start without oclif's config (bin/lean.js); --help (before a `--`) is oclif's.
const LEAN = new Set(['call', 'list', 'describe']);
const [id, ...argv] = process.argv.slice(2);
const dashes = argv.indexOf('--');
if (LEAN.has(id) && !(dashes === -1 ? argv : argv.slice(0, dashes)).includes('--help')) {
  const [{runLean}, {default: Command}] = await Promise.all([
    import('../dist/lean/run.js'),
    import(`../dist/lean/${id}.js`),
  ]);
  await runLean(Command, id, argv, oclif);
} else {
  await oclif();
}
