import {invalidArgument} from '../../server-kit/api-errors.js';
import {TacosError} from '../../errors.js';
import {timestamp} from '../../server-kit/grpc/handlers.js';
import {DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, text} from '../message-fields.js';
import type {Intent} from './state.js';

/* The payment mock's messages: its enums, reading requests, and the Payment message of an intent. */

export const PAYMENT_SCENARIOS = ['APPROVE', 'FAIL', 'DELAY', 'RANDOM', 'TIMEOUT'] as const;
export type PaymentScenarioName = (typeof PAYMENT_SCENARIOS)[number];

export type Timestamp = {seconds: string; nanos: number};
export interface Money {
  amount: string;
  currency: string;
}
export interface Metadata {
  source: string;
  user_agent: string;
  ip_address: string;
  session_id: string;
  scenario: string;
  tags: Record<string, string>;
}
export interface PaymentResult {
  success: boolean;
  failure_reason: string;
  gateway_response: string;
  response_code: number;
  processed_at: Timestamp;
}

export const STATUS = {
  UNSPECIFIED: 'PAYMENT_STATUS_UNSPECIFIED',
  PENDING: 'PAYMENT_STATUS_PENDING',
  PROCESSING: 'PAYMENT_STATUS_PROCESSING',
  COMPLETED: 'PAYMENT_STATUS_COMPLETED',
  FAILED: 'PAYMENT_STATUS_FAILED',
  CANCELLED: 'PAYMENT_STATUS_CANCELLED',
  REFUNDED: 'PAYMENT_STATUS_REFUNDED',
  EXPIRED: 'PAYMENT_STATUS_EXPIRED',
} as const;
// Enum names in number order, for a caller that sends numbers.
export const STATUSES = Object.values(STATUS) as string[];
export const METHODS = [
  'PAYMENT_METHOD_UNSPECIFIED',
  'PAYMENT_METHOD_CREDIT_CARD',
  'PAYMENT_METHOD_DEBIT_CARD',
  'PAYMENT_METHOD_BANK_TRANSFER',
  'PAYMENT_METHOD_MOBILE_PAY',
  'PAYMENT_METHOD_DIGITAL_WALLET',
];
export const FINAL_STATUSES = new Set<string>([
  STATUS.COMPLETED,
  STATUS.FAILED,
  STATUS.CANCELLED,
  STATUS.REFUNDED,
  STATUS.EXPIRED,
]);

export function notFound(id: string): TacosError {
  return new TacosError(`Payment intent ${id} was not found.`, {code: 'NOT_FOUND'});
}

export function requiredText(value: unknown, field: string): string {
  const result = text(value);
  if (!result) throw invalidArgument(field, `${field} is required.`);
  return result;
}

/** An enum field as its name; proto-loader gives names, but a number (an unknown value) may come. */
export function enumName(value: unknown, names: string[]): string {
  if (typeof value === 'number') return names[value] ?? names[0];
  return typeof value === 'string' && value !== '' ? value : names[0];
}

export function scenarioOf(value: unknown, field: string): PaymentScenarioName | undefined {
  const name = enumName(value, [
    'PAYMENT_SCENARIO_UNSPECIFIED',
    ...PAYMENT_SCENARIOS.map((scenario) => `PAYMENT_SCENARIO_${scenario}`),
  ]);
  if (name === 'PAYMENT_SCENARIO_UNSPECIFIED') return undefined;
  const scenario = name.replace(/^PAYMENT_SCENARIO_/, '') as PaymentScenarioName;
  if (!PAYMENT_SCENARIOS.includes(scenario)) throw invalidArgument(field, `${field} ${name} is not a PaymentScenario.`);
  return scenario;
}

/** Minor units as a canonical decimal string (int64 travels as a string). */
function minorUnits(value: unknown): bigint | undefined {
  const digits = text(value ?? '0').trim();
  return /^-?\d+$/.test(digits) ? BigInt(digits) : undefined;
}

export function positiveMoney(value: any, field: string): Money {
  const amount = minorUnits(value?.amount);
  if (amount === undefined || amount <= 0n) {
    throw invalidArgument(
      field,
      `${field}.amount must be a positive whole number of minor units (got ${JSON.stringify(value?.amount ?? null)}).`,
    );
  }
  const currency = text(value?.currency).trim();
  if (!currency) throw invalidArgument(field, `${field}.currency is required (an ISO 4217 code such as KRW).`);
  return {amount: amount.toString(), currency};
}

/** The refund of a completed payment: the whole amount unless a smaller one in its currency is asked. */
export function refundAmount(value: any, paid: Money): Money {
  const amount = minorUnits(value?.amount);
  if (amount === 0n) return {...paid};
  if (amount === undefined || amount < 0n || amount > BigInt(paid.amount)) {
    throw invalidArgument(
      'refund_amount',
      `refund_amount.amount must be from 1 to the ${paid.amount} paid (got ${JSON.stringify(value?.amount ?? null)}).`,
    );
  }
  const currency = text(value?.currency).trim();
  if (currency && currency !== paid.currency) {
    throw invalidArgument(
      'refund_amount',
      `refund_amount.currency must be ${paid.currency}, the payment's currency (got ${currency}).`,
    );
  }
  return {amount: amount.toString(), currency: paid.currency};
}

export function metadataOf(value: any, scenario: PaymentScenarioName): Metadata {
  const tags: Record<string, string> = {};
  for (const [key, tag] of Object.entries((value?.tags ?? {}) as Record<string, unknown>)) tags[key] = text(tag);
  return {
    source: text(value?.source),
    user_agent: text(value?.user_agent),
    ip_address: text(value?.ip_address),
    session_id: text(value?.session_id),
    // The scenario in effect, whichever way it was chosen.
    scenario: `PAYMENT_SCENARIO_${scenario}`,
    tags,
  };
}

/** The Payment message of an intent, a fresh object every time. */
export function paymentView(intent: Intent): object {
  return {
    payment_intent_id: intent.id,
    payment_id: intent.paymentId,
    reservation_id: intent.reservationId,
    user_id: intent.userId,
    status: intent.status,
    amount: {...intent.amount},
    method: intent.method,
    created_at: timestamp(intent.createdAt),
    updated_at: timestamp(intent.updatedAt),
    processed_at: intent.processedAt === undefined ? null : timestamp(intent.processedAt),
    transaction_id: intent.transactionId,
    result: intent.result ? structuredClone(intent.result) : null,
    metadata: structuredClone(intent.metadata),
  };
}

export function statusWord(status: string): string {
  return status.replace(/^PAYMENT_STATUS_/, '').toLowerCase();
}

export function gatewayResponse(code: number, message: string, scenario: PaymentScenarioName): string {
  return JSON.stringify({simulated: true, code, message, scenario});
}

/** Offset and size of the requested page; a cursor (an encoded offset) wins over page. */
export function pageOf(pagination: any): {offset: number; size: number} {
  const page = Number(pagination?.page ?? 0);
  const pageSize = Number(pagination?.page_size ?? 0);
  if (!Number.isInteger(page) || page < 0)
    throw invalidArgument('pagination.page', `pagination.page must be 1 or more (got ${pagination?.page}).`);
  if (!Number.isInteger(pageSize) || pageSize < 0) {
    throw invalidArgument(
      'pagination.page_size',
      `pagination.page_size must be 0 (the default of ${DEFAULT_PAGE_SIZE}) or more (got ${pagination?.page_size}).`,
    );
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const cursor = text(pagination?.cursor);
  if (cursor) return {offset: decodeCursor(cursor), size};
  return {offset: (Math.max(page, 1) - 1) * size, size};
}

export function encodeCursor(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const match = /^offset:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw invalidArgument('pagination.cursor', 'pagination.cursor is not a cursor this service returned.');
  return Number(match[1]);
}
