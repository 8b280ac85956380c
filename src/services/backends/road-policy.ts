import type {Protocol} from './transports.js';

/**
 * What decides and watches the two roads (gRPC, HTTP) to each backend: the gateway's rollout
 * controller is one. BackendClient asks it per call and tells it how each call went.
 */
export interface RoadPolicy {
  /** The share (0..100) of callers whose calls to `backend` take gRPC now: read per call, so a change applies to the next call. */
  grpcShare(backend: string): number;
  /** A finished call; `failed` only for a failure of the backend (isBackendFailure), never a refusal of the request. */
  record(backend: string, protocol: Protocol, failed: boolean, seconds: number): void;
}
