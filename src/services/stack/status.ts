import {bold, dim, green, red, yellow} from 'colorette';
import {grpcServing, httpOk, readyProbe, redisAnswers} from './probes.js';
import {isSameProcess, type ServiceState, type StackState} from './state.js';

export interface ServiceStatus {
  name: string;
  /** ready, unhealthy (running, not answering), stopped, reused (a Redis we did not start), starting, restarting. */
  state: string;
  healthy: boolean;
  pid?: number;
  urls: string[];
  logFile?: string;
  restarts: number;
}

/** Each service probed now (its process and every URL it serves), not read from the state alone. */
export async function probeServices(state: StackState): Promise<ServiceStatus[]> {
  return Promise.all(
    state.services.map(async (service) => {
      const running = service.state === 'reused' || (await isSameProcess(service.process));
      // A stack file's service is probed by its own check; a built-in by each URL it serves.
      const answering =
        running &&
        (service.check
          ? await readyProbe(service.check, PROBE_TIMEOUT_MS)()
          : (await Promise.all(service.urls.map(probeUrl))).every(Boolean));
      return {
        name: service.name,
        state: stateWord(service, running, answering),
        healthy: answering,
        pid: service.process?.pid,
        urls: service.urls,
        logFile: service.logFile,
        restarts: service.restarts,
      };
    }),
  );
}

/** What the probe found wins over what the state recorded; the record explains a silence. */
function stateWord(service: ServiceState, running: boolean, answering: boolean): string {
  if (!running) return 'stopped';
  if (answering) return service.state === 'reused' ? 'reused' : 'ready';
  return service.state === 'starting' || service.state === 'restarting' ? service.state : 'unhealthy';
}

/** A service that answers within this is not called unhealthy: generous, since a loaded machine (a load test) is slow. */
const PROBE_TIMEOUT_MS = 2000;

function probeUrl(url: string): Promise<boolean> {
  const {protocol, hostname, port} = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  if (protocol === 'redis:') return redisAnswers(host, Number(port), process.env.REDIS_PASSWORD, PROBE_TIMEOUT_MS);
  if (protocol === 'grpc:') return grpcServing(`${host}:${port}`, '', PROBE_TIMEOUT_MS);
  return httpOk(`${url}/readyz`, PROBE_TIMEOUT_MS);
}

/** The status table: service, state, pid, URLs, log file. */
export function statusTable(services: ServiceStatus[], color: boolean): string {
  const paint = (state: string) => {
    if (!color) return state;
    if (state === 'ready' || state === 'reused') return green(state);
    if (state === 'starting' || state === 'restarting') return yellow(state);
    return red(state);
  };
  const rows = services.map((s) => [s.name, s.state, s.pid ? String(s.pid) : '-', s.urls.join(' '), s.logFile ?? '-']);
  const header = ['SERVICE', 'STATE', 'PID', 'URLS', 'LOG'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[], style: (text: string, i: number) => string) =>
    cells
      .map((cell, i) => style(cell, i) + ' '.repeat(widths[i] - cell.length))
      .join('  ')
      .trimEnd();
  return [
    line(header, (text) => (color ? bold(text) : text)),
    ...rows.map((row) => line(row, (text, i) => (i === 1 ? paint(text) : i === 4 && color ? dim(text) : text))),
  ].join('\n');
}
