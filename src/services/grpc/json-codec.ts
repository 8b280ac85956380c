import {fromBinary, fromJson, toBinary, toJson, type DescMessage, type FileRegistry, type JsonValue} from '@bufbuild/protobuf';
import type {MethodDefinition, PackageDefinition} from '@grpc/proto-loader';
import {errorMessage} from '../errors.js';
import {invalidArgument} from '../api-errors.js';

/** Converts one method's messages between the handlers' objects and canonical proto3 JSON. */
export interface MethodCodec {
  /** Full method name, such as reservation.v1.ReservationService.CreateReservation. */
  name: string;
  requestFromJson(json: JsonValue): object;
  requestToJson(request: object): JsonValue;
  responseFromJson(json: JsonValue): object;
  responseToJson(response: object): JsonValue;
}

/**
 * proto3 JSON for HTTP, gRPC objects for handlers: the same message crosses through its binary form,
 * so a field, enum or Timestamp means the same on both doors (JSON keys are the .proto field names).
 */
export function methodCodec(registry: FileRegistry, definition: PackageDefinition, service: string, method: string): MethodCodec {
  const serviceDesc = registry.getService(service);
  const methodDesc = serviceDesc?.methods.find((candidate) => candidate.name === method);
  const serialization = (definition[service] as Record<string, MethodDefinition<object, object>> | undefined)?.[method];
  if (!methodDesc || !serialization) throw new Error(`${service}.${method} is not in the compiled contracts`);
  const parse = (desc: DescMessage, json: JsonValue, ignoreUnknownFields: boolean) => {
    try {
      return toBinary(desc, fromJson(desc, json, {ignoreUnknownFields}));
    } catch (error) {
      throw invalidArgument(fieldOf(errorMessage(error)), `The request is not a valid ${desc.typeName}: ${errorMessage(error)}`);
    }
  };
  const print = (desc: DescMessage, bytes: Uint8Array): JsonValue =>
    toJson(desc, fromBinary(desc, bytes), {useProtoFieldName: true, alwaysEmitImplicit: true});
  return {
    name: `${service}.${method}`,
    requestFromJson: (json) => serialization.requestDeserialize(Buffer.from(parse(methodDesc.input, json, false))),
    requestToJson: (request) => print(methodDesc.input, serialization.requestSerialize(request)),
    // A newer server may answer with fields we do not know yet: proto3 JSON says ignore them.
    responseFromJson: (json) => serialization.responseDeserialize(Buffer.from(parse(methodDesc.output, json, true))),
    responseToJson: (response) => print(methodDesc.output, serialization.responseSerialize(response)),
  };
}

/** The field a protobuf-es JSON error names, e.g. `cannot decode field x.y.Z.quantity from JSON`. */
function fieldOf(message: string): string {
  return /field [\w.]+\.(\w+) from JSON/.exec(message)?.[1] ?? /key "(\w+)"/.exec(message)?.[1] ?? 'body';
}
