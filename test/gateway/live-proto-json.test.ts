/**
 * The proto3 JSON of live messages: the queue update's fast path (written by hand, sent to thousands
 * at once) says exactly what the generic path (proto-loader's binary, read and printed by
 * @bufbuild/protobuf) says, for every kind of state.
 */
import {beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';
import {ProtoJson, queueUpdateJson} from '../../src/services/gateway/live/proto-json.js';
import {QUEUE_UPDATE_TYPE, queueUpdateMessage} from '../../src/services/gateway/live/queue-messages.js';
import type {QueueState} from '../../src/services/gateway/queue/queue-service.js';
import {packageDefinition} from '../../src/services/server-kit/grpc/server.js';

let protoJson: ProtoJson;

beforeAll(async () => {
  protoJson = new ProtoJson((await loadContractSet()).registry, packageDefinition());
});

const base = {waitingToken: 'wt_evt-1_abc', eventId: 'evt-1', waitingSeconds: 12};
const waiting = (position: number, etaSeconds: number, admissionReady: boolean, expiresAt: number): QueueState => ({
  ...base,
  status: 'waiting',
  position,
  etaSeconds,
  admissionReady,
  expiresAt,
});

const STATES: Array<[string, QueueState]> = [
  ['far back', waiting(20_000, 1999, false, 1_780_000_000_123)],
  ['at the head, ready', waiting(1, 0, true, 1_780_000_000_000)],
  ['ready at a whole second', waiting(7, 0, true, 1_780_000_001_000)],
  ['an ETA but no wait', waiting(11, 1, false, 1_780_000_000_450)],
  ['admitted', {...base, status: 'admitted'}],
  ['expired', {...base, status: 'expired'}],
];

describe('queue update JSON', () => {
  for (const [name, state] of STATES) {
    for (const correlationId of ['', 'req-42']) {
      for (const sentAt of [1_780_000_000_000, 1_780_000_000_007]) {
        it(`${name}, correlation "${correlationId}", sent at ${sentAt}: the fast path is the generic one`, () => {
          const generic = protoJson.stringify(QUEUE_UPDATE_TYPE, queueUpdateMessage(state, correlationId, sentAt)!);
          expect(queueUpdateJson(state, correlationId, sentAt)).toBe(generic);
        });
      }
    }
  }

  it('proto3 JSON: lowerCamelCase names, enum names, RFC 3339 timestamps, defaults left out', () => {
    const text = protoJson.stringify(
      QUEUE_UPDATE_TYPE,
      queueUpdateMessage(waiting(1, 0, true, 1_780_000_000_000), '', 1_780_000_000_250)!,
    );
    expect(JSON.parse(text)).toEqual({
      type: 'EVENT_TYPE_QUEUE_UPDATE',
      queueUpdate: {
        waitingToken: 'wt_evt-1_abc',
        position: 1,
        eventType: 'QUEUE_EVENT_TYPE_ADMISSION_READY',
        admissionReady: true,
        expiresAt: '2026-05-28T20:26:40Z',
      },
      timestamp: '2026-05-28T20:26:40.250Z',
    });
  });

  it('left has no message: the stream just ends', () => {
    const left: QueueState = {...base, status: 'left'};
    expect(queueUpdateMessage(left, '')).toBeUndefined();
    expect(queueUpdateJson(left, '', 0)).toBeUndefined();
  });

  it('a type no method returns is a programming error, said plainly', () => {
    expect(() => protoJson.stringify('gateway.v1.NoSuchMessage', {})).toThrow(/NoSuchMessage/);
  });
});
