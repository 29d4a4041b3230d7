/** Durable file writes: data and the directory entries that name it must both reach the disk. */
import { open } from 'node:fs/promises';

/** fsyncs a directory, making a rename or create inside it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Writes a whole file and fsyncs it (the caller renames it into place afterwards). */
export async function writeFileSynced(path: string, data: Buffer | string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
