// Who is calling: the API token the auth middleware (token-auth.ts) admitted
// the call with, carried in the call's context. A job stores it as its
// submitter, the unit of the per-submitter cap on running jobs (claim-jobs.ts).
// With no token auth every caller is the same submitter, ''.
import type { CallContext } from 'nice-grpc';

export interface SubmitterContext {
  /** The admitting token's id. */
  submitter?: string;
}

export function submitterOf(context: CallContext): string {
  return (context as CallContext & SubmitterContext).submitter ?? '';
}
