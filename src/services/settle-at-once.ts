/**
 * An intent whose metadata tags carry this key with "true" is processed by the payment mock on its
 * own right after it is created (its scenario decides the outcome), for clients that never call
 * process. On the floor: the gateway sets the tag, the mock reads it, and neither imports the other.
 */
export const SETTLE_AT_ONCE_TAG = 'settle_at_once';
