import {
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type FileRegistry,
  type JsonObject,
  type JsonValue,
} from '@bufbuild/protobuf';
import type {MethodDefinition, PackageDefinition} from '@grpc/proto-loader';
import {errorMessage} from '../../errors.js';
import {invalidArgument} from '../api-errors.js';

/** Converts one method's messages between the handlers' objects and canonical proto3 JSON. */
export interface MethodCodec {
  /** Full method name, such as reservation.v1.ReservationService.CreateReservation. */
  name: string;
  requestFromJson(json: JsonValue): object;
  /**
   * The request an HTTP call carries: the JSON body (an object), query parameters that name request
   * fields (`pagination.page=2` for a nested one; others, such as a cache-buster, are ignored) and
   * path parameters, which win.
   */
  requestFromHttp(params: Record<string, string>, query: Record<string, unknown>, body: unknown): object;
  requestToJson(request: object): JsonValue;
  responseFromJson(json: JsonValue): object;
  responseToJson(response: object): JsonValue;
}

/**
 * proto3 JSON for HTTP, gRPC objects for handlers: the same message crosses through its binary form,
 * so a field, enum or Timestamp means the same on both doors (JSON keys are the .proto field names).
 */
export function methodCodec(
  registry: FileRegistry,
  definition: PackageDefinition,
  service: string,
  method: string,
): MethodCodec {
  const serviceDesc = registry.getService(service);
  const methodDesc = serviceDesc?.methods.find((candidate) => candidate.name === method);
  const serialization = (definition[service] as Record<string, MethodDefinition<object, object>> | undefined)?.[method];
  if (!methodDesc || !serialization) throw new Error(`${service}.${method} is not in the compiled contracts`);
  const parse = (desc: DescMessage, json: JsonValue, ignoreUnknownFields: boolean) => {
    try {
      return toBinary(desc, fromJson(desc, json, {ignoreUnknownFields}));
    } catch (error) {
      throw invalidArgument(
        fieldOf(errorMessage(error)),
        `The request is not a valid ${desc.typeName}: ${errorMessage(error)}`,
      );
    }
  };
  const print = (desc: DescMessage, bytes: Uint8Array): JsonValue =>
    toJson(desc, fromBinary(desc, bytes), {useProtoFieldName: true, alwaysEmitImplicit: true});
  const requestFromJson = (json: JsonValue) =>
    serialization.requestDeserialize(Buffer.from(parse(methodDesc.input, json, false)));
  return {
    name: `${service}.${method}`,
    requestFromJson,
    requestFromHttp: (params, query, body) => {
      if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
        throw invalidArgument('body', 'The body must be a JSON object.');
      }
      const json: JsonObject = {...(body as JsonObject | undefined)};
      for (const [key, value] of Object.entries(query)) {
        const path = key.split('.');
        if (!hasFieldPath(methodDesc.input, path)) continue;
        let target = json;
        for (const part of path.slice(0, -1)) target = (target[part] ??= {}) as JsonObject;
        target[path.at(-1)!] = (Array.isArray(value) ? value.at(-1) : value) as JsonValue;
      }
      return requestFromJson({...json, ...params});
    },
    requestToJson: (request) => print(methodDesc.input, serialization.requestSerialize(request)),
    // A newer server may answer with fields we do not know yet: proto3 JSON says ignore them.
    responseFromJson: (json) => serialization.responseDeserialize(Buffer.from(parse(methodDesc.output, json, true))),
    responseToJson: (response) => print(methodDesc.output, serialization.responseSerialize(response)),
  };
}

/** The path (`pagination.page`) names a field of the message, by .proto or JSON name. */
function hasFieldPath(desc: DescMessage, path: string[]): boolean {
  const field = desc.fields.find((candidate) => candidate.name === path[0] || candidate.jsonName === path[0]);
  if (!field) return false;
  if (path.length === 1) return true;
  return field.fieldKind === 'message' && hasFieldPath(field.message, path.slice(1));
}

/** The field a protobuf-es JSON error names, e.g. `cannot decode field x.y.Z.quantity from JSON`. */
function fieldOf(message: string): string {
  return /field [\w.]+\.(\w+) from JSON/.exec(message)?.[1] ?? /key "(\w+)"/.exec(message)?.[1] ?? 'body';
}
