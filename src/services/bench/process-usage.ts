/**
 * What a process on this machine costs, read from Linux's /proc: the gateway's CPU and memory while
 * the waiting-room scenario loads it, found by the port it listens on. Elsewhere every reading is
 * null and the report says so.
 */
import {readFile, readdir, readlink} from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux build that tacos runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const TCP_LISTEN = '0A';

export interface ProcessUsage {
  /** User + system CPU time since the process started, in microseconds (10 ms steps). */
  cpuMicros: number;
  rssBytes: number;
}

/** The socket inodes listening on `port` (IPv4 and IPv6 tables). */
async function listeningInodes(port: number): Promise<Set<string>> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === TCP_LISTEN) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/**
 * The pid of the process that holds the socket listening on `port`, or null when none is visible
 * (another user's process, not Linux). With --workers N the primary holds it: its figures leave out
 * the workers, which the report notes.
 */
export async function findListeningPid(port: number): Promise<number | null> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return null;
  const wanted = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const pids = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (wanted.has(target)) return Number(pid);
    }
  }
  return null;
}

export async function readProcessUsage(pid: number): Promise<ProcessUsage | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
    return {cpuMicros: (ticks * 1e6) / CLOCK_TICKS_PER_SECOND, rssBytes: rssKb * 1024};
  } catch {
    return null;
  }
}

/** The soft limit of open files of a process (`self` for this one), or null when unreadable. */
export async function openFileLimit(pid: number | 'self'): Promise<number | null> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  if (soft === undefined) return null;
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}
