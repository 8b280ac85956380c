import {randomBytes} from 'node:crypto';
import {open, rename, rm, stat, copyFile, chmod} from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `file` atomically: a temporary file in the same dir, written and fsynced, given the old
 * file's mode, then renamed over it (readers see the old or the new file, never half of one).
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const mode = (await stat(file)).mode & 0o7777;
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(mode); // open's mode is reduced by the umask
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temporary, {force: true});
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, {force: true});
    throw error;
  }
}

/** Keeps a copy of `file` as `<file>.bak` (same mode), replacing an older backup. */
export async function backupFile(file: string): Promise<string> {
  const backup = `${file}.bak`;
  await copyFile(file, backup);
  await chmod(backup, (await stat(file)).mode & 0o7777);
  return backup;
}
