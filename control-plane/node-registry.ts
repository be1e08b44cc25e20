// The nodes whose Connect stream is open on this control plane. A node is given
// work only through its live session here; when the stream ends the session is
// gone, whatever else of the node still answers.
import { alreadyExists } from '../common/errors.js';
import type { NodeSession } from './node-session.js';

export class NodeRegistry {
  private sessions = new Map<string, NodeSession>();

  /**
   * Refuses a second agent for a node: never two streams for one node. A new
   * stream of the same agent process (its connection broke, and it reconnected
   * before the old stream was seen to end) replaces the old one, which is
   * judged (nothing more is decided for it) and closed; it is returned.
   */
  add(session: NodeSession): NodeSession | undefined {
    const old = this.sessions.get(session.nodeId);
    if (old && old.agentInstance !== '' && old.agentInstance === session.agentInstance) {
      old.judge();
      old.close();
      this.sessions.set(session.nodeId, session);
      return old;
    }
    if (old) {
      throw alreadyExists(
        `node "${session.nodeId}" is already connected on another stream; ` +
          'each agent needs its own --node-id (is a second agent running with the same one?)',
      );
    }
    this.sessions.set(session.nodeId, session);
    return undefined;
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

  /** The live sessions work may be placed on: not drained. */
  schedulable(): NodeSession[] {
    return this.all().filter((s) => s.schedulable);
  }
}
