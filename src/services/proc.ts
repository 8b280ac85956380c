import {readFileSync} from 'node:fs';
import {readFile, readdir, readlink} from 'node:fs/promises';

/** Linux counts a process's CPU time in clock ticks of 10 ms (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;

/** The fields of a /proc/PID/stat text after the command name (which may hold spaces and parentheses): the state first. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The CPU time (user and system) a process has used so far, in µs; undefined once it is gone. */
export function processCpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
  } catch {
    return undefined;
  }
}

/** A process's resident memory (VmRSS) in bytes; undefined once it is gone. */
export async function processRssBytes(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** The soft limit of open files of a process (`self` for this one); undefined when unreadable. */
export async function openFileLimit(pid: number | 'self'): Promise<number | undefined> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  if (soft === undefined) return undefined;
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

/** The CPU time of a process and of its children (a cluster's workers), in µs; 0 for what is gone. */
export function processTreeCpuMicros(pid: number): number {
  let children: number[] = [];
  try {
    // The children of its main thread: node:cluster forks its workers from there.
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // Gone, or a kernel without /proc/PID/task/TID/children: the process alone.
  }
  return (processCpuMicros(pid) ?? 0) + children.reduce((sum, child) => sum + processTreeCpuMicros(child), 0);
}

/**
 * The kernel's start time of a running process (clock ticks since boot), read from /proc; with the
 * pid it names one process for good, so a pid reused by another program is told apart. Undefined
 * for no process, and for a zombie: it has exited, only nobody has reaped it yet.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const fields = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** The process (pid and command line) listening on a TCP port, when the system tells. */
export async function portOwner(port: number): Promise<{pid: number; command: string} | undefined> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
      if (fields.length > 9 && fields[3] === '0A' && parseInt(fields[1].split(':')[1], 16) === port)
        inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
        return {pid: Number(entry), command: cmdline.split('\0').filter(Boolean).join(' ') || '?'};
      }
    }
  }
  return undefined;
}
