// One place for Grid's errors. Servers throw nice-grpc ServerErrors carrying a
// status code and a message a person can act on (what is wrong, and which
// field; never a hint for one client such as gridctl, which adds its own);
// anything else that escapes a handler is mapped here (see
// control-plane/error-middleware.ts). Where a client must branch, the status
// also carries a google.rpc detail (nice-grpc-error-details puts it in the
// standard grpc-status-details-bin trailer): BadRequest naming the field of
// an INVALID_ARGUMENT, and ErrorInfo with a reason from ErrorReason.
import { ServerError, Status } from 'nice-grpc';
import { BadRequest, ErrorInfo, RetryInfo, RichServerError } from 'nice-grpc-error-details';

export { ServerError, Status };

/** google.rpc.ErrorInfo.domain of Grid's reasons. */
export const ERROR_DOMAIN = 'grid.v1';

/** google.rpc.ErrorInfo.reason values: what a client may branch on (docs/api.md lists them). */
export enum ErrorReason {
  /** RESOURCE_EXHAUSTED: the queue holds the server's maximum; retry later. Metadata: max_queued. */
  QUEUE_FULL = 'QUEUE_FULL',
  /** INVALID_ARGUMENT: a job id prefix matches several jobs. Metadata: candidates (comma-separated ids). */
  AMBIGUOUS_JOB_ID = 'AMBIGUOUS_JOB_ID',
  /** FAILED_PRECONDITION: an agent of a version this control plane does not work with. Metadata: accepted. */
  AGENT_VERSION_INCOMPATIBLE = 'AGENT_VERSION_INCOMPATIBLE',
}

/** A bad request; `field` (as "spec.resources.cpus") goes in a BadRequest detail too. */
export function invalidArgument(message: string, field?: string): ServerError {
  if (field === undefined) return new ServerError(Status.INVALID_ARGUMENT, message);
  return new RichServerError(Status.INVALID_ARGUMENT, message, [
    BadRequest.fromPartial({ fieldViolations: [{ field, description: message }] }),
  ]);
}

/** An error with a reason a client branches on, as google.rpc.ErrorInfo. */
export function reasoned(code: Status, message: string, reason: ErrorReason, metadata: Record<string, string> = {}): ServerError {
  return new RichServerError(code, message, [ErrorInfo.fromPartial({ reason, domain: ERROR_DOMAIN, metadata })]);
}

export function notFound(message: string): ServerError {
  return new ServerError(Status.NOT_FOUND, message);
}

/** Worth retrying; `retryAfterMs` goes in a RetryInfo detail. */
export function unavailable(message: string, retryAfterMs = 1000): ServerError {
  const seconds = Math.floor(retryAfterMs / 1000);
  return new RichServerError(Status.UNAVAILABLE, message, [
    RetryInfo.fromPartial({ retryDelay: { seconds, nanos: (retryAfterMs % 1000) * 1e6 } }),
  ]);
}

export function failedPrecondition(message: string): ServerError {
  return new ServerError(Status.FAILED_PRECONDITION, message);
}

export function alreadyExists(message: string): ServerError {
  return new ServerError(Status.ALREADY_EXISTS, message);
}

export function unauthenticated(message: string): ServerError {
  return new ServerError(Status.UNAUTHENTICATED, message);
}

export function permissionDenied(message: string): ServerError {
  return new ServerError(Status.PERMISSION_DENIED, message);
}

// Codes postgres.js and Postgres use when the database cannot be reached or is
// restarting: the request may succeed later, so callers see UNAVAILABLE.
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08006',
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  }
  return false;
}

// Postgres aborted the statement for a reason that passes: a deadlock between
// concurrent multi-row statements, or a serialization failure. Retrying works.
const RETRYABLE_CODES = new Set(['40P01', '40001']);

/** A database error worth retrying as it is: unreachable, or aborted by a deadlock or serialization failure. */
export function isTransientDatabaseError(err: unknown): boolean {
  if (isDatabaseUnavailable(err)) return true;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
  }
  return false;
}
