/**
 * `tacos --help` against what any oclif CLI pays for its help: a bare `node -e 0`, and a minimal
 * oclif CLI (one command, @oclif/core's own help, made in a temp dir) run with `--help`, each as
 * fresh processes run in turn. Goal: tacos --help takes at most 1.2 times the minimal CLI's help.
 * Run by npm run bench:call [-- --rounds 10].
 */
import {execFileSync} from 'node:child_process';
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {median, roundsArgument, verdict} from './process-timing.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = roundsArgument(10);

const minimal = await mkdtemp(path.join(tmpdir(), 'tacos-bench-oclif-'));
try {
  await symlink(path.join(root, 'node_modules'), path.join(minimal, 'node_modules'));
  await mkdir(path.join(minimal, 'commands'));
  await writeFile(
    path.join(minimal, 'package.json'),
    JSON.stringify({
      name: 'minimal',
      version: '1.0.0',
      type: 'module',
      oclif: {bin: 'minimal', commands: './commands'},
    }),
  );
  await writeFile(
    path.join(minimal, 'commands', 'hello.js'),
    `import {Command, Flags} from '@oclif/core';
export default class Hello extends Command {
  static summary = 'Says hello.';
  static flags = {name: Flags.string({description: 'Whom to greet.'})};
  async run() {
    const {flags} = await this.parse(Hello);
    this.log(\`hello \${flags.name}\`);
  }
}
`,
  );
  await writeFile(
    path.join(minimal, 'run.js'),
    "import {execute} from '@oclif/core/execute';\nawait execute({dir: import.meta.url});\n",
  );

  const targets = {
    'node -e 0': ['-e', '0'],
    'minimal oclif CLI --help': [path.join(minimal, 'run.js'), '--help'],
    'tacos --help': [path.join(root, 'bin', 'run.js'), '--help'],
  };
  const times = Object.fromEntries(Object.keys(targets).map((name) => [name, [] as number[]]));
  for (const args of Object.values(targets)) execFileSync(process.execPath, args, {stdio: 'pipe'}); // file system cache
  for (let round = 0; round < rounds; round++) {
    for (const [name, args] of Object.entries(targets)) {
      const started = performance.now();
      execFileSync(process.execPath, args, {stdio: 'pipe', timeout: 30_000});
      times[name].push(performance.now() - started);
    }
  }
  console.log(`${rounds} rounds each, one after the other:`);
  for (const [name, values] of Object.entries(times))
    console.log(`  ${name.padEnd(26)} median ${median(values).toFixed(0)} ms`);
  const [node, oclif, tacos] = Object.values(times).map(median);
  console.log(verdict('tacos --help / minimal oclif CLI --help', tacos / oclif, 1.2, 1.5));
  console.log(
    `  beyond a bare node: tacos ${(tacos - node).toFixed(0)} ms, minimal oclif CLI ${(oclif - node).toFixed(0)} ms`,
  );
} finally {
  await rm(minimal, {recursive: true, force: true});
}
