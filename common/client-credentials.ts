// How agents and gridctl dial the control plane: TLS when given the CA that
// signed the control plane's certificate (and, for an agent, its own client
// certificate, which names its node), else plaintext for a development
// control plane on loopback. Tokens ride in call metadata (see cli/client.ts).
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ChannelCredentials } from '@grpc/grpc-js';

export interface ClientTls {
  /** CA (PEM) the control plane's certificate must chain to. */
  caFile: string;
  /** This client's certificate and key (PEM): agents only. */
  certFile?: string;
  keyFile?: string;
}

export function channelCredentials(tls: ClientTls | undefined): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  quietIpServerNameWarning();
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new Error('--tls-cert and --tls-key go together: give both or neither');
  return ChannelCredentials.createSsl(
    read(tls.caFile, 'CA'),
    tls.keyFile ? read(tls.keyFile, 'key') : null,
    tls.certFile ? read(tls.certFile, 'certificate') : null,
  );
}

/** The common name of a PEM certificate file: for an agent certificate, its node id. */
export function commonNameOf(certFile: string): string {
  const cert = new X509Certificate(read(certFile, 'certificate'));
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  if (!cn) throw new Error(`${certFile} has no common name (CN): it is not a Grid agent certificate (see \`gridctl certs issue-agent\`)`);
  return cn;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * grpc-js sends the dialled host as the TLS server name even when it is an IP
 * address, and Node warns about that (DEP0123) on every connection. The
 * certificate is still checked against the address; only the noise goes.
 */
function quietIpServerNameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const code = typeof args[1] === 'object' ? (args[1] as { code?: string } | null)?.code : args[2];
    if (code !== 'DEP0123') emit(...args);
  }) as typeof process.emitWarning;
}
let quieted = false;
