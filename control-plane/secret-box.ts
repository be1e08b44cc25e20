// Seals jobs' secret env values for PostgreSQL with a key the control plane is
// given (never stored in the database): AES-256-GCM, a fresh 96-bit nonce per
// job, and the job id as associated data, so a sealed value moved to another
// job's row does not open. A sealed box is
//   version (1) | key id (4) | nonce (12) | tag (16) | ciphertext
// where the key id (the first bytes of the key's SHA-256) names the key it
// needs, so a wrong key is a plain error, not garbage.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SecretBox {
  seal(jobId: string, secrets: Record<string, string>): Buffer;
  open(jobId: string, sealed: Buffer): Record<string, string>;
}

/** Opens a job's sealed secrets for delivery (nothing sealed: none). */
export type OpenSecrets = (jobId: string, sealed: Buffer | null) => Record<string, string> | undefined;

/** OpenSecrets with this box; without one, a job with sealed secrets cannot be delivered, and says why. */
export function secretOpener(box: SecretBox | undefined): OpenSecrets {
  return (jobId, sealed) => {
    if (!sealed) return undefined;
    if (!box) throw new Error(`job ${jobId} has secret env values and this control plane has no --secret-key-file to open them`);
    return box.open(jobId, sealed);
  };
}

const VERSION = 1;

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error(`a secret key is 32 bytes; this one is ${key.length}`);
  const keyId = createHash('sha256').update(key).digest().subarray(0, 4);
  return {
    seal(jobId, secrets) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(jobId));
      const body = Buffer.concat([cipher.update(JSON.stringify(secrets)), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), keyId, nonce, cipher.getAuthTag(), body]);
    },
    open(jobId, sealed) {
      if (sealed[0] !== VERSION) throw new Error(`the secrets of job ${jobId} are sealed in an unknown format (${sealed[0]})`);
      if (!sealed.subarray(1, 5).equals(keyId)) {
        throw new Error(`the secrets of job ${jobId} were sealed with another key (id ${sealed.subarray(1, 5).toString('hex')}; this control plane has ${keyId.toString('hex')})`);
      }
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(5, 17));
      decipher.setAAD(Buffer.from(jobId));
      decipher.setAuthTag(sealed.subarray(17, 33));
      return JSON.parse(Buffer.concat([decipher.update(sealed.subarray(33)), decipher.final()]).toString()) as Record<string, string>;
    },
  };
}

/** Reads a key file: 32 bytes as base64 (`openssl rand -base64 32`) or hex. */
export function readSecretKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the secret key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key as base64 or hex (make one with \`openssl rand -base64 32\`)`);
  return key;
}

/** The embedded development Grid's key: made once in its data dir, beside (not in) its database. */
export function ensureSecretKeyFile(file: string): string {
  // The data dir's own mode is left as the embedded PostgreSQL needs it (its user must enter it);
  // the key file alone is private.
  mkdirSync(dirname(file), { recursive: true });
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return file;
}
