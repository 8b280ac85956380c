import {status as GrpcStatus} from '@grpc/grpc-js';

/**
 * grpc_code label values as go-grpc-prometheus writes them (codes.Code.String()); also the names
 * `tacos call` prints. On the floor: both kits name codes.
 */
const CODE_NAMES = Object.fromEntries(
  Object.entries(GrpcStatus)
    .filter(([, value]) => typeof value === 'number')
    .map(([name, value]) => [
      value,
      name === 'OK'
        ? 'OK'
        : name === 'CANCELLED'
          ? 'Canceled'
          : name.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase()),
    ]),
) as Record<number, string>;

export function grpcCodeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}
