// Reads `gridctl run --input PATH` arguments into the job's input files: a file
// lands as /grid/in/<its name>, a directory as /grid/in/<its name>/... .
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { InputFile } from '../common/gen/grid/v1/job.js';

export async function readInputs(paths: string[]): Promise<InputFile[]> {
  const files: InputFile[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new Error(`--input ${path}: no such file or directory`);
    }
    const name = basename(path.replace(/\/+$/, ''));
    if (info.isDirectory()) await addDirectory(path, name, files);
    else files.push({ path: name, content: await readFile(path), mode: info.mode & 0o777 });
  }
  return files;
}

async function addDirectory(dir: string, prefix: string, files: InputFile[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const rel = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) await addDirectory(full, rel, files);
    else if (entry.isFile()) files.push({ path: rel, content: await readFile(full), mode: (await stat(full)).mode & 0o777 });
  }
}

/** What `gridctl run --stdin` sends: this process's standard input, read to its end (a job's stdin is stored with it). */
export const MAX_STDIN_BYTES = 16 * 1024 * 1024;

export async function readStdin(input: NodeJS.ReadableStream = process.stdin, limit = MAX_STDIN_BYTES): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of input) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += data.length;
    if (total > limit) throw new Error(`standard input is more than ${limit / 1024 / 1024} MiB: pass a file with --input instead (the job reads it under /grid/in)`);
    parts.push(data);
  }
  return Buffer.concat(parts);
}
