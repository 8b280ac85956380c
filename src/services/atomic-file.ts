import {link, mkdir, rename, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';

let writes = 0;

/**
 * Writes `text` to `file` whole or not at all: into a temporary file beside it, then renamed over
 * it, so a reader (or a crash) never sees half a file. `exclusive` refuses to replace a file that exists.
 */
export async function writeFileAtomically(file: string, text: string, exclusive = false): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true});
  const temporary = `${file}.${process.pid}.${++writes}.tmp`;
  try {
    await writeFile(temporary, text);
    if (exclusive) {
      // link() fails when the target exists, where rename() would replace it.
      await link(temporary, file);
    } else await rename(temporary, file);
  } finally {
    await rm(temporary, {force: true});
  }
}
