/**
 * Generating every built-in template for all of proto/ (model from protobufjs, Handlebars render,
 * nothing written), timed over a bounded number of rounds. Goal: under 1 s.  npm run bench:gen
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {gen} from '../src/services/codegen/gen.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = 5;
const times: number[] = [];
let files = 0;
for (let round = 0; round < rounds; round++) {
  const started = performance.now();
  const results = await gen({
    protoDir: path.join(root, 'proto'),
    templatesDir: path.join(root, 'templates'),
    mode: 'dry-run',
  });
  times.push(performance.now() - started);
  files = results.reduce((sum, result) => sum + result.files.length, 0);
}
const first = times[0];
times.sort((a, b) => a - b);
console.log(
  `tacos gen, every template (${files} files), ${rounds} rounds: first ${first.toFixed(0)} ms, slowest ${times.at(-1)!.toFixed(0)} ms, median ${times[2].toFixed(0)} ms`,
);
console.log(`goal: under 1000 ms: ${times.at(-1)! < 1000 ? 'met' : 'NOT met'}`);
