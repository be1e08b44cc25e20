// gridctl outputs: fetch what a job wrote under /grid/out into a directory.
import { extractTo } from '../../common/tar-archive.js';
import type { GridClients } from '../client.js';

export async function outputsCommand(clients: GridClients, jobId: string, options: { dest: string }): Promise<number> {
  async function* pieces() {
    for await (const { data } of clients.jobs.downloadOutputs({ jobId })) yield data;
  }
  const written = await extractTo(pieces(), options.dest);
  for (const path of written) process.stdout.write(`${options.dest.replace(/\/+$/, '')}/${path}\n`);
  return 0;
}
