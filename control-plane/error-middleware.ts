// Turns whatever escapes a handler into a status a client can act on: handlers
// throw ServerErrors on purpose; a database outage becomes UNAVAILABLE (retry
// later); anything else is a bug, logged here with its cause chain.
import type { ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, isTransientDatabaseError, ServerError, Status, unavailable } from '../common/errors.js';

export function errorMiddleware(log: Logger): ServerMiddleware {
  return async function* handleErrors(call, context) {
    try {
      return yield* call.next(call.request, context);
    } catch (err) {
      if (err instanceof ServerError || (err instanceof Error && err.name === 'AbortError')) throw err;
      if (isDatabaseUnavailable(err)) {
        log.warn({ err, method: call.method.path }, 'database unavailable');
        throw unavailable('the job database is unreachable right now; retry shortly');
      }
      if (isTransientDatabaseError(err)) {
        log.warn({ err, method: call.method.path }, 'database aborted the statement (deadlock or serialization); the call may be retried');
        throw unavailable('the job database aborted this request (a conflict with a concurrent one); retry it');
      }
      log.error({ err, method: call.method.path }, 'unexpected error');
      throw new ServerError(Status.INTERNAL, `internal error in ${call.method.path}; details are in the control plane's log`);
    }
  };
}
