import {Metadata, type ServiceError, type StatusObject} from '@grpc/grpc-js';
import {create, toBinary, type DescMessage, type FileRegistry} from '@bufbuild/protobuf';
import {anyPack, type Any} from '@bufbuild/protobuf/wkt';
import {logFailure, toApiError} from '../api-errors.js';
import type {Logger} from '../../logging.js';

/** The reason domain of our google.rpc.ErrorInfo details. */
export const ERROR_DOMAIN = 'tacos.traffic-tacos';

/**
 * Turns any error into a gRPC status whose grpc-status-details-bin carries google.rpc.Status with
 * the contract's common.v1.Error, a google.rpc.ErrorInfo (our UPPER_SNAKE code as the reason), a
 * google.rpc.BadRequest naming the field at fault, and the request id. What the caller is not told
 * (an internal error, a dependency's failure) goes to `logger` with the request id.
 */
export function createStatusEncoder(registry: FileRegistry, logger: Logger) {
  const message = (name: string): DescMessage => {
    const desc = registry.getMessage(name);
    if (!desc) throw new Error(`${name} is missing from the compiled contracts`);
    return desc;
  };
  const status = message('google.rpc.Status');
  const contractError = message('common.v1.Error');
  const errorInfo = message('google.rpc.ErrorInfo');
  const badRequest = message('google.rpc.BadRequest');
  const requestInfo = message('google.rpc.RequestInfo');
  const errorCodes = registry.getEnum('common.v1.ErrorCode');

  return (error: unknown, requestId: string): Partial<StatusObject> & ServiceError => {
    const api = toApiError(error);
    logFailure(logger, error, api, requestId);
    const code = errorCodes?.values.find((value) => value.name === api.shape.contract)?.number ?? 0;
    const details: Any[] = [
      anyPack(
        contractError,
        create(contractError, {
          code,
          message: api.message,
          traceId: requestId,
          details: api.field ? [{field: api.field, reason: api.code}] : [],
        }),
      ),
      anyPack(errorInfo, create(errorInfo, {reason: api.code, domain: ERROR_DOMAIN})),
      anyPack(requestInfo, create(requestInfo, {requestId})),
    ];
    if (api.field) {
      details.push(
        anyPack(
          badRequest,
          create(badRequest, {fieldViolations: [{field: api.field, description: api.message, reason: api.code}]}),
        ),
      );
    }
    const metadata = new Metadata();
    metadata.set(
      'grpc-status-details-bin',
      Buffer.from(toBinary(status, create(status, {code: api.shape.grpc, message: api.message, details}))),
    );
    return Object.assign(new Error(api.message), {code: api.shape.grpc, details: api.message, metadata});
  };
}

export type StatusEncoder = ReturnType<typeof createStatusEncoder>;
