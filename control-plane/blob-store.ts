// Where job files live. Postgres (chunked) by default, so that every control
// plane replica sees the same data; another store (S3, a disk) can implement
// the same small interface later.
import type { Sql } from './db/connect.js';

export interface BlobStore {
  /** Stores the piece of blob `key` at `offset`; storing the same piece again is harmless. */
  putChunk(key: string, offset: number, data: Uint8Array): Promise<void>;
  /** The blob's pieces in order; empty when there is no such blob. */
  read(key: string): AsyncIterable<Buffer>;
  size(key: string): Promise<number>;
}

export function postgresBlobStore(sql: Sql): BlobStore {
  return {
    async putChunk(key, offset, data) {
      if (data.length === 0) return;
      await sql`INSERT INTO blob_chunks (blob_key, byte_offset, data) VALUES (${key}, ${offset}, ${Buffer.from(data)})
                ON CONFLICT DO NOTHING`;
    },
    async *read(key) {
      // A page at a time, so a large blob never sits in memory whole.
      let from = -1;
      for (;;) {
        const rows = await sql<{ byte_offset: number; data: Buffer }[]>`
          SELECT byte_offset, data FROM blob_chunks WHERE blob_key = ${key} AND byte_offset > ${from}
          ORDER BY byte_offset LIMIT 16`;
        if (rows.length === 0) return;
        for (const row of rows) yield row.data;
        from = rows.at(-1)!.byte_offset;
      }
    },
    async size(key) {
      const [row] = await sql<{ size: number | null }[]>`SELECT sum(length(data))::int8 AS size FROM blob_chunks WHERE blob_key = ${key}`;
      return row?.size ?? 0;
    },
  };
}

export function outputsKey(jobId: string, attempt: number): string {
  return `outputs/${jobId}/${attempt}`;
}
