/**
 * An intent whose metadata tags carry this key with "true" is processed by the payment mock on its
 * own right after it is created (its scenario decides the outcome), for clients that never call
 * process. Its own module so the gateway, which sets the tag, does not load the mock to name it.
 */
export const SETTLE_AT_ONCE_TAG = 'settle_at_once';
