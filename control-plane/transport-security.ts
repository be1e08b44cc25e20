// How the control plane's gRPC port is secured. TLS serves clients (who then
// authenticate with bearer tokens, see token-auth.ts) and agents (who present a
// client certificate from Grid's CA; the node they speak for is the one their
// certificate names, see node-identity.ts) on the same port. Plaintext is only
// for a development control plane on loopback, unless a loudly named flag says
// otherwise: a token or a job's environment would cross the network in clear.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

export type Transport =
  | { kind: 'tls'; certFile: string; keyFile: string; clientCaFile: string; reloadMs: number }
  | { kind: 'plaintext' };

export interface TransportFlags {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  plaintext?: boolean;
  allowPlaintextOnNetwork?: boolean;
}

/** How often the certificate files are re-read: a replaced certificate is served within this long. */
export const CERTIFICATE_RELOAD_MS = 5000;

/** The transport the flags ask for, or why they cannot be served (a message naming the flags). */
export function chooseTransport(flags: TransportFlags): Transport {
  const tlsFiles = [flags.tlsCert, flags.tlsKey, flags.tlsClientCa];
  if (flags.plaintext) {
    if (tlsFiles.some(Boolean)) throw new Error('--plaintext and --tls-* were both given: choose one');
    if (!isLoopback(hostOf(flags.listen)) && !flags.allowPlaintextOnNetwork) {
      throw new Error(
        `refusing to serve plaintext on ${flags.listen}, which is not a loopback address: anyone on the network could ` +
          'run containers, act as an agent and read every job. Serve TLS (`gridctl certs init` makes the files), ' +
          'listen on 127.0.0.1, or, on a network you trust entirely, add --allow-plaintext-on-network-INSECURE',
      );
    }
    return { kind: 'plaintext' };
  }
  if (tlsFiles.every(Boolean)) {
    return { kind: 'tls', certFile: flags.tlsCert!, keyFile: flags.tlsKey!, clientCaFile: flags.tlsClientCa!, reloadMs: CERTIFICATE_RELOAD_MS };
  }
  if (tlsFiles.some(Boolean)) {
    throw new Error('TLS needs all three of --tls-cert, --tls-key and --tls-client-ca (the CA that signs agent certificates)');
  }
  throw new Error(
    'no TLS certificate was given. Serve TLS with --tls-cert, --tls-key and --tls-client-ca ' +
      '(`gridctl certs init` makes them in a minute), or pass --plaintext for a development control plane on loopback',
  );
}

export function hostOf(listen: string): string {
  const host = listen.slice(0, Math.max(0, listen.lastIndexOf(':')));
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Server credentials for a transport. The files are watched, so a renewed
 * certificate (or CA) is served without a restart. Client certificates are
 * asked for but not required: clients authenticate with tokens; agents without
 * a verified certificate are refused by the agent service.
 */
export async function serverCredentials(transport: Transport): Promise<grpc.ServerCredentials> {
  if (transport.kind === 'plaintext') return grpc.ServerCredentials.createInsecure();
  // A missing or unreadable file is a plain error at start, not a port that drops every handshake.
  for (const [what, file] of [['--tls-cert', transport.certFile], ['--tls-key', transport.keyFile], ['--tls-client-ca', transport.clientCaFile]]) {
    try {
      readFileSync(file!);
    } catch (err) {
      throw new Error(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
  const files = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: transport.certFile,
    privateKeyFile: transport.keyFile,
    caCertificateFile: transport.clientCaFile,
    refreshIntervalMs: transport.reloadMs,
  });
  // The provider reads the files asynchronously, and until it has, the port drops every TLS
  // handshake: wait for the first certificate and CA before the caller listens.
  await new Promise<void>((resolve, reject) => {
    const loaded = { identity: false, ca: false };
    const settle = () => loaded.identity && loaded.ca && (clearTimeout(timer), resolve());
    const timer = setTimeout(() => reject(new Error(`the TLS files (${transport.certFile}, ${transport.keyFile}, ${transport.clientCaFile}) did not load`)), 10_000);
    files.addIdentityCertificateListener((update) => update && ((loaded.identity = true), settle()));
    files.addCaCertificateListener((update) => update && ((loaded.ca = true), settle()));
  });
  return grpc.experimental.createCertificateProviderServerCredentials(files, files, false);
}

/**
 * The metadata key that carries the node a verified client certificate names.
 * The interceptor below sets it from the TLS session and removes any value a
 * client sent, so a handler can trust it.
 */
export const VERIFIED_NODE_KEY = 'x-grid-verified-node';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** The node a peer certificate speaks for: its common name, if it is an agent (client-auth) certificate. */
export function nodeOfCertificate(cert: PeerCertificate | undefined): string | undefined {
  if (!cert?.subject) return undefined;
  if (cert.ext_key_usage && !cert.ext_key_usage.includes(CLIENT_AUTH)) return undefined;
  const cn = cert.subject.CN;
  return typeof cn === 'string' ? cn : undefined;
}

/** Stamps each call's metadata with the node its TLS peer proved to be (or with nothing). */
export const verifiedNodeInterceptor: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, mdNext) {
          metadata.remove(VERIFIED_NODE_KEY);
          const node = nodeOfCertificate(call.getAuthContext()?.sslPeerCertificate);
          if (node !== undefined) metadata.set(VERIFIED_NODE_KEY, node);
          mdNext(metadata);
        },
      });
    },
  });
