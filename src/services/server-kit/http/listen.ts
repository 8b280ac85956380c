import {TacosError, errorMessage} from '../../errors.js';
import type {HttpServer} from './server.js';

/** Listens, or fails with the port named and what to do about it. */
export async function listenHttp(server: HttpServer, host: string, port: number, portVariable: string): Promise<void> {
  try {
    await server.listen({host, port});
  } catch (error) {
    throw new TacosError(`Cannot serve HTTP on ${host}:${port}: ${errorMessage(error)}`, {
      hint: `Another process may hold the port: pick another with ${portVariable}, or stop that process.`,
      code: 'PORT_IN_USE',
      cause: error,
    });
  }
}
