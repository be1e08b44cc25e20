// One place for Grid's errors. Servers throw nice-grpc ServerErrors carrying a
// status code and a message a person can act on; anything else that escapes a
// handler is mapped here (see control-plane/error-middleware.ts).
import { ServerError, Status } from 'nice-grpc';

export { ServerError, Status };

export function invalidArgument(message: string): ServerError {
  return new ServerError(Status.INVALID_ARGUMENT, message);
}

export function notFound(message: string): ServerError {
  return new ServerError(Status.NOT_FOUND, message);
}

export function unavailable(message: string): ServerError {
  return new ServerError(Status.UNAVAILABLE, message);
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

export function resourceExhausted(message: string): ServerError {
  return new ServerError(Status.RESOURCE_EXHAUSTED, message);
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
