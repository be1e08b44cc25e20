// A TCP proxy between a control plane and PostgreSQL that breaks the connection
// at the worst moment for a dispatch: after a claim of queued jobs (claimJobs in
// control-plane/sql/claim-jobs.ts) has committed, and before its reply reaches the
// control plane. The jobs are then ASSIGNED in Postgres while the control plane
// never learnt which, so nobody tells the node.
//
// It reads just enough of the wire protocol to know which reply answers which
// statement (https://www.postgresql.org/docs/current/protocol-message-formats.html):
// every message but the client's first is a type byte and an int32 big-endian
// length that counts itself; the first (startup, SSL or cancel request) has no
// type byte. postgres.js uses the extended protocol and prepared statements: a
// Parse ('P') names a statement and carries its SQL once per connection, each
// run is a Bind ('B') of that name, Execute and Sync ('S'), and every Sync (or
// simple Query 'Q') gets exactly one ReadyForQuery ('Z') back, in order; queries
// may be pipelined. So the n-th reply segment (ended by the n-th 'Z' after the
// startup's) answers the n-th Sync. When armed, a segment answering a claim is
// held back; if it holds a DataRow ('D': a job was really claimed), at the first
// 'Z' that says the connection is idle again (the claim's transaction has
// committed: its own 'Z' in autocommit, else the COMMIT's) both sockets are
// destroyed instead of forwarding what was held. Once per arm; everything else passes unchanged.
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * SQL that claims jobs: claimJobs' statement, and insertJobs' (a submit placed
 * at once stores its job ASSIGNED, control-plane/submit-placement.ts). An
 * insert's reply counts only for its rows that were stored ASSIGNED.
 */
const CLAIM_MARKERS = ['claimed AS (', 'INSERT INTO job_attempts'];
const INSERT_MARKERS = ['INSERT INTO jobs (id, state', 'INSERT INTO job_attempts'];
type Claiming = 'claim' | 'insert';
const claimingOf = (sql: string): Claiming | undefined =>
  CLAIM_MARKERS.every((m) => sql.includes(m)) ? 'claim' : INSERT_MARKERS.every((m) => sql.includes(m)) ? 'insert' : undefined;
const PLACED = Buffer.from('ASSIGNED');

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const [DATA_ROW, READY_FOR_QUERY] = ['D', 'Z'].map((c) => c.charCodeAt(0));
/** ReadyForQuery's transaction status when no transaction is open. */
const IDLE = 'I'.charCodeAt(0);

export interface ClaimCut {
  /** Which statement it was: a dispatch claim, or the insert of a submit placed at once. */
  kind: 'claim' | 'insert';
  /** The reply that was withheld; its DataRows hold the claimed rows, as text. */
  reply: Buffer;
  /** How many rows the claim returned. */
  rows: number;
  at: number;
}

export interface PgCuttingProxy {
  port: number;
  /** A database URL of the upstream server, rewritten to go through the proxy. */
  urlFor(databaseUrl: string): string;
  /** Cut the next claim (or submit placed at once) that returns at least one claimed row (then disarm). */
  arm(): void;
  disarm(): void;
  /** Every cut so far. */
  readonly cuts: readonly ClaimCut[];
  /** Resolves at the next cut. */
  nextCut(timeoutMs: number): Promise<ClaimCut>;
  close(): Promise<void>;
}

export async function startPgCuttingProxy(upstream: { host: string; port: number }): Promise<PgCuttingProxy> {
  let armed = false;
  const cuts: ClaimCut[] = [];
  let waiters: ((cut: ClaimCut) => void)[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const db = connect(upstream.port, upstream.host);
    for (const s of [client, db]) {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => {
        sockets.delete(s);
        client.destroy();
        db.destroy();
      });
    }
    // TLS (the server answered an SSL request with 'S') cannot be read: pass it through.
    let opaque = false;
    let startup = true;
    let singleByteReplies = 0;
    // Client side: prepared statements that are the claim, and the reply segments answering one.
    const claimStatements = new Map<string, Claiming>();
    const claimSegments = new Map<number, Claiming>();
    let clientSegment = 1; // segment 0 is the startup's, ended by the first 'Z'
    let serverSegment = 0;
    let held: Buffer[] = [];
    let heldRows = 0;
    let fromClient = Buffer.alloc(0);
    let fromServer = Buffer.alloc(0);

    const inspectClient = (type: string, body: Buffer) => {
      switch (type) {
        case 'P': {
          const [name, query] = cstrings(body, 2);
          const kind = claimingOf(query!);
          if (kind) claimStatements.set(name!, kind);
          else claimStatements.delete(name!);
          return;
        }
        case 'B': {
          const [, statement] = cstrings(body, 2);
          // Marked as soon as the Bind passes, before the server can answer its Execute.
          const kind = claimStatements.get(statement!);
          if (kind) claimSegments.set(clientSegment, kind);
          return;
        }
        case 'Q': {
          const kind = claimingOf(cstrings(body, 1)[0]!);
          if (kind) claimSegments.set(clientSegment, kind);
          clientSegment++;
          return;
        }
        case 'S':
          clientSegment++;
          return;
      }
    };

    client.on('data', (data: Buffer) => {
      if (opaque) return void db.write(data);
      fromClient = Buffer.concat([fromClient, data]);
      let at = 0;
      for (;;) {
        const left = fromClient.length - at;
        if (startup) {
          if (left < 8 || left < fromClient.readInt32BE(at)) break;
          const code = fromClient.readInt32BE(at + 4);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) singleByteReplies++;
          else startup = false; // the startup message (or a cancel request)
          at += fromClient.readInt32BE(at);
          continue;
        }
        if (left < 5 || left < 1 + fromClient.readInt32BE(at + 1)) break;
        const length = fromClient.readInt32BE(at + 1);
        inspectClient(String.fromCharCode(fromClient[at]!), fromClient.subarray(at + 5, at + 1 + length));
        at += 1 + length;
      }
      if (at > 0) db.write(fromClient.subarray(0, at));
      fromClient = fromClient.subarray(at);
    });

    db.on('data', (data: Buffer) => {
      if (opaque) return void client.write(data);
      fromServer = Buffer.concat([fromServer, data]);
      const out: Buffer[] = [];
      let at = 0;
      for (;;) {
        const left = fromServer.length - at;
        if (singleByteReplies > 0) {
          if (left < 1) break;
          singleByteReplies--;
          const answer = String.fromCharCode(fromServer[at]!);
          out.push(fromServer.subarray(at, at + 1));
          at += 1;
          if (answer !== 'N') {
            opaque = true;
            out.push(fromServer.subarray(at));
            at = fromServer.length;
            if (fromClient.length > 0) db.write(fromClient);
            fromClient = Buffer.alloc(0);
            break;
          }
          continue;
        }
        if (left < 5 || left < 1 + fromServer.readInt32BE(at + 1)) break;
        const type = fromServer[at]!;
        const message = fromServer.subarray(at, at + 1 + fromServer.readInt32BE(at + 1));
        at += message.length;
        if (!claimSegments.has(serverSegment)) {
          out.push(message);
          if (type === READY_FOR_QUERY) serverSegment++;
          continue;
        }
        held.push(message);
        const kind = claimSegments.get(serverSegment)!;
        if (type === DATA_ROW && (kind === 'claim' || message.includes(PLACED))) heldRows++;
        if (type !== READY_FOR_QUERY) continue;
        claimSegments.delete(serverSegment);
        serverSegment++;
        // A claim inside a transaction has committed only at the next ReadyForQuery
        // that says idle ('I'): hold what comes until then, as part of this reply.
        if (armed && heldRows > 0 && message[5] !== IDLE) {
          claimSegments.set(serverSegment, kind);
          continue;
        }
        if (armed && heldRows > 0) {
          // Committed, and the control plane will never know what it claimed.
          armed = false;
          const cut: ClaimCut = { kind, reply: Buffer.concat(held), rows: heldRows, at: Date.now() };
          cuts.push(cut);
          client.destroy();
          db.destroy();
          const woken = waiters;
          waiters = [];
          for (const wake of woken) wake(cut);
          return;
        }
        out.push(...held);
        held = [];
        heldRows = 0;
      }
      if (out.length > 0) client.write(Buffer.concat(out));
      fromServer = fromServer.subarray(at);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    port,
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    arm: () => void (armed = true),
    disarm: () => void (armed = false),
    cuts,
    nextCut(timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no claim was cut within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((cut) => {
          clearTimeout(timer);
          resolve(cut);
        });
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** The first `count` NUL-terminated strings of a message body. */
function cstrings(body: Buffer, count: number): string[] {
  const strings: string[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, at);
    if (end < 0) break;
    strings.push(body.toString('utf8', at, end));
    at = end + 1;
  }
  return strings;
}
