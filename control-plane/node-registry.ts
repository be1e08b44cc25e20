// The nodes whose Connect stream is open on this control plane. A node is given
// work only through its live session here; when the stream ends the session is
// gone, whatever else of the node still answers.
import { alreadyExists } from '../common/errors.js';
import type { NodeSession } from './node-session.js';

export class NodeRegistry {
  private sessions = new Map<string, NodeSession>();

  /** Refuses a second stream for a node: never two streams for one node. */
  add(session: NodeSession): void {
    if (this.sessions.has(session.nodeId)) {
      throw alreadyExists(
        `node "${session.nodeId}" is already connected on another stream; ` +
          'each agent needs its own --node-id (is a second agent running with the same one?)',
      );
    }
    this.sessions.set(session.nodeId, session);
  }

  /** Removes the session if it is still the registered one for its node. */
  remove(session: NodeSession): void {
    if (this.sessions.get(session.nodeId) === session) this.sessions.delete(session.nodeId);
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  /** The session if it is still the registered, unjudged one for its node. */
  isCurrent(session: NodeSession): boolean {
    return this.sessions.get(session.nodeId) === session && !session.judged;
  }

  all(): NodeSession[] {
    return [...this.sessions.values()];
  }

  live(): NodeSession[] {
    return this.all().filter((s) => s.live);
  }
}
