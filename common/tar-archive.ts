// Small helpers over tar-stream for job files: renaming entries as an archive
// streams through (so an archive of /grid/out holds paths relative to it), and
// listing an archive's files.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import tar from 'tar-stream';

/**
 * Re-packs `input`, dropping the first path component (Docker's archive of
 * /grid/out starts with "out/"). A consumer may stop early (a size cap): the
 * whole chain is then torn down, and no stream's error goes unhandled.
 */
export function stripFirstComponent(input: NodeJS.ReadableStream): AsyncIterable<Buffer> {
  const extract = tar.extract();
  const pack = tar.pack();
  const fail = (err: Error) => {
    extract.destroy(err);
    pack.destroy(err);
  };
  extract.on('entry', (header, stream, next) => {
    stream.on('error', () => {}); // reported through the pipe callback below
    const name = header.name.split('/').slice(1).join('/');
    if (!name || name === '/') {
      stream.resume();
      stream.on('end', next);
      return;
    }
    const entry = pack.entry({ ...header, name });
    entry.on('error', () => {});
    stream.pipe(entry, (err: Error | null) => (err ? fail(err) : next()));
  });
  extract.on('finish', () => pack.finalize());
  extract.on('error', (err) => pack.destroy(err));
  pack.on('error', () => {});
  pack.on('close', () => {
    extract.destroy();
    (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  });
  input.on('error', (err) => fail(err as Error));
  input.pipe(extract as unknown as NodeJS.WritableStream);
  return pack as unknown as AsyncIterable<Buffer>;
}

/** The regular files of an archive with their sizes. */
export function listFiles(chunks: AsyncIterable<Buffer>): Promise<{ path: string; size: number }[]> {
  const extract = tar.extract();
  const files: { path: string; size: number }[] = [];
  return new Promise((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      if (header.type === 'file') files.push({ path: header.name, size: header.size ?? 0 });
      stream.resume();
      stream.on('end', next);
    });
    extract.on('finish', () => resolve(files));
    extract.on('error', reject);
    const input = new PassThrough();
    input.pipe(extract);
    (async () => {
      for await (const chunk of chunks) if (!input.write(chunk)) await new Promise((r) => input.once('drain', r));
      input.end();
    })().catch(reject);
  });
}

/** Writes an archive's entries under `dest`, refusing any path that would leave it. */
export async function extractTo(chunks: AsyncIterable<Uint8Array>, dest: string): Promise<string[]> {
  const root = resolve(dest);
  const extract = tar.extract();
  const written: string[] = [];
  const done = new Promise<void>((ok, fail) => {
    extract.on('entry', (header, stream, next) => {
      const target = resolve(root, header.name);
      if (target !== root && !target.startsWith(root + sep)) {
        stream.resume();
        return fail(new Error(`refusing archive entry "${header.name}": it points outside ${root}`));
      }
      const parts: Buffer[] = [];
      stream.on('data', (d: unknown) => parts.push(d as Buffer));
      stream.on('end', async () => {
        try {
          if (header.type === 'directory') await mkdir(target, { recursive: true });
          else if (header.type === 'file') {
            await mkdir(dirname(target), { recursive: true });
            await writeFile(target, Buffer.concat(parts));
            if (header.mode) await chmod(target, header.mode & 0o777);
            written.push(header.name);
          }
          next();
        } catch (err) {
          fail(err);
        }
      });
    });
    extract.on('finish', () => ok());
    extract.on('error', fail);
  });
  for await (const chunk of chunks) extract.write(Buffer.from(chunk));
  (extract as unknown as { end(): void }).end();
  await done;
  return written;
}
