/**
 * A user's reservation and payment updates for browsers (issue 18): the WebSocket and SSE routes over
 * the user streams, with the bearer token in ?access_token= or the WebSocket's first message. Real
 * gateway, mocks that publish their changes, and Redis.
 */
import * as grpc from '@grpc/grpc-js';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {WebSocket} from 'ws';
import type {RunningMock} from '../../src/services/mocks/mock-server.js';
import type {TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {admit, backendEnv, bearer, DEV_SECRET, send, startStackGateway, startTestMock} from '../helpers/stack.js';

type Json = Record<string, any>;

const CONCERT = 'evt_2026_concert';
const WAIT_MS = 10_000;

let redis: RedisProcess | undefined;
const mocks: RunningMock[] = [];
let gateway: TestGateway | undefined;
let sender: grpc.Metadata;
let messages: grpc.Client | undefined;

beforeAll(async () => {
  redis = await startRedis();
  const publishing = {MOCK_PUBLISH_UPDATES: 'true', REDIS_ADDRESS: redis.address};
  const reservation = await startTestMock('reservation', {}, publishing);
  const payment = await startTestMock('payment', {scenario: 'APPROVE'}, publishing);
  mocks.push(reservation, payment);
  gateway = await startStackGateway(backendEnv(reservation, payment, redis.address), {GRPC_ENABLED: 'true'});
  sender = new grpc.Metadata();
  sender.set('authorization', await bearer('ops', DEV_SECRET, 'messages:send'));
  messages = await contractClient('gateway.v1.WebSocketService', gateway.grpc);
});

afterAll(async () => {
  messages?.close();
  await gateway?.close();
  await Promise.allSettled(mocks.map((mock) => mock.close()));
  await disposeRedis(redis);
});

/** A WebSocket's messages and its close. */
function open(path: string) {
  const socket = new WebSocket(`${gateway!.http.replace('http', 'ws')}${path}`);
  const messages: Json[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  socket.on('error', () => undefined);
  const opened = new Promise((resolve) => socket.once('open', resolve));
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  return {socket, messages, opened, closed};
}

/** Waits (bounded) until `find` finds something in `messages`. */
async function waitFor(what: string, messages: Json[], find: (message: Json) => boolean): Promise<Json> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const found = messages.find(find);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms; had ${JSON.stringify(messages)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends the user a message until one of their streams has taken it (the stream is listening). */
async function untilListening(user: string, session: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const request = {target_user_id: user, target_session_id: session, content: 'hello'};
    const answer = await unaryCall(messages!, 'SendMessage', request, sender);
    if (answer.delivered) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the stream of ${user} never took a message`);
}

describe('user updates over WebSocket and SSE', () => {
  it('a WebSocket with ?access_token= shows the hold the user made, as proto3 JSON', async () => {
    const auth = await bearer('wsuser');
    const token = auth.slice('Bearer '.length);
    const live = open(`/api/v1/reservations/ws?access_token=${token}&session_id=wsuser-1`);
    await live.opened;
    await untilListening('wsuser', 'wsuser-1');
    const reservationToken = await admit(gateway!.http, CONCERT, 'wsuser');
    const created = await send(gateway!.http, 'POST', '/api/v1/reservations', {
      body: {event_id: CONCERT, quantity: 1, reservation_token: reservationToken},
      auth,
    });
    expect(created.status, created.text).toBe(201);
    const held = await waitFor(
      'the hold',
      live.messages,
      (message) => message.type === 'EVENT_TYPE_RESERVATION_UPDATE',
    );
    expect(held.reservationUpdate).toMatchObject({
      reservationId: created.json.reservation_id,
      newStatus: 'RESERVATION_STATUS_HOLD',
    });
    live.socket.close();
  });

  it('a WebSocket may send the token as its first message; a wrong one gets the error and 1008', async () => {
    const live = open('/api/v1/payments/ws?session_id=firstmsg-1');
    await live.opened;
    live.socket.send(JSON.stringify({access_token: (await bearer('firstmsg')).slice('Bearer '.length)}));
    await untilListening('firstmsg', 'firstmsg-1');
    const told = await waitFor('the message', live.messages, (message) => message.type === 'EVENT_TYPE_MESSAGE');
    expect(told.paymentUpdate.message).toBe('hello');
    live.socket.close();

    const refused = open('/api/v1/payments/ws');
    await refused.opened;
    refused.socket.send(JSON.stringify({access_token: 'not-a-token'}));
    expect(await refused.closed).toBe(1008);
    expect(refused.messages).toEqual([{error: expect.objectContaining({code: 'UNAUTHENTICATED'})}]);
  });

  it('SSE with ?access_token=; without a token, 401 before any stream', async () => {
    const token = (await bearer('sseuser')).slice('Bearer '.length);
    const controller = new AbortController();
    const response = await fetch(
      `${gateway!.http}/api/v1/reservations/events?access_token=${token}&session_id=sseuser-1`,
      {signal: controller.signal},
    );
    try {
      expect(response.status).toBe(200);
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      await untilListening('sseuser', 'sseuser-1');
      let text = '';
      const deadline = Date.now() + WAIT_MS;
      while (!/data: .*EVENT_TYPE_MESSAGE/.test(text) && Date.now() < deadline) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += chunk.value;
      }
      expect(text).toMatch(/id: \S+\ndata: \{"type":"EVENT_TYPE_MESSAGE"/);
    } finally {
      controller.abort();
    }
    const refused = await send(gateway!.http, 'GET', '/api/v1/payments/events');
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('UNAUTHENTICATED');
  });
});
