import {fromBinary, toJson, type DescMessage, type FileRegistry} from '@bufbuild/protobuf';
import type {PackageDefinition, MethodDefinition} from '@grpc/proto-loader';
import {isAdmissionReady, type QueueState} from '../queue/queue-service.js';
import {queueEventType} from './queue-messages.js';

interface JsonType {
  desc: DescMessage;
  serialize: (message: object) => Buffer;
}

/**
 * Proto3 JSON text (lowerCamelCase names, enum names, RFC 3339 timestamps, defaults left out) of
 * the proto-loader-shaped messages the gRPC handlers yield, so a WebSocket or SSE client reads the
 * schema a gRPC client does. The generic path goes through the binary form: proto-loader writes
 * it, @bufbuild/protobuf reads it and prints the JSON. Types are those some method of the
 * contracts returns (where proto-loader's serializers are).
 */
export class ProtoJson {
  private readonly types = new Map<string, JsonType>();

  constructor(registry: FileRegistry, definition: PackageDefinition) {
    for (const file of registry.files) {
      for (const service of file.services) {
        const methods = definition[service.typeName] as Record<string, MethodDefinition<object, object>> | undefined;
        for (const method of service.methods) {
          const serialize = methods?.[method.name]?.responseSerialize;
          if (serialize) this.types.set(method.output.typeName, {desc: method.output, serialize});
        }
      }
    }
  }

  /** The JSON text of `message`, a proto-loader-shaped object of the named type. */
  stringify(typeName: string, message: object): string {
    const type = this.types.get(typeName);
    if (!type) throw new Error(`${typeName} is not the output of any method in the compiled contracts`);
    return JSON.stringify(toJson(type.desc, fromBinary(type.desc, type.serialize(message))));
  }
}

/**
 * The fast path for the one message sent to thousands at once: the proto3 JSON of
 * queueUpdateMessage(state, correlationId, sentAt), written directly (a test holds it equal to
 * ProtoJson's); undefined for 'left', which has no message.
 */
export function queueUpdateJson(state: QueueState, correlationId: string, sentAt: number): string | undefined {
  if (state.status === 'left') return undefined;
  let update = `{"waitingToken":${JSON.stringify(state.waitingToken)}`;
  if (state.status === 'waiting') {
    if (state.position !== 0) update += `,"position":${state.position}`;
    if (state.etaSeconds !== 0) update += `,"etaSeconds":${state.etaSeconds}`;
  }
  update += `,"eventType":"${queueEventType(state)}"`;
  if (isAdmissionReady(state)) update += ',"admissionReady":true';
  if (state.status === 'waiting') update += `,"expiresAt":"${rfc3339(state.expiresAt)}"`;
  const correlation = correlationId === '' ? '' : `,"correlationId":${JSON.stringify(correlationId)}`;
  return `{"type":"EVENT_TYPE_QUEUE_UPDATE","queueUpdate":${update}},"timestamp":"${rfc3339(sentAt)}"${correlation}}`;
}

/** A Timestamp's proto3 JSON at millisecond precision: no fraction when it is zero, as protobuf-es prints it. */
function rfc3339(ms: number): string {
  const text = new Date(ms).toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}
