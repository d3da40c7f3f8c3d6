/**
 * Zips a folder into a deployment package in memory (yazl), keeping executable bits so a
 * custom runtime's `bootstrap` stays runnable. Entries are sorted so the same folder
 * gives the same bytes (and the same CodeSha256) every time.
 */
import { readdir, stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';

async function listFiles(root: string, dir = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, dir), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

export async function zipFolder(root: string): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const files = await listFiles(root);
  if (files.length === 0) throw new Error(`${root} has no files to deploy`);
  // A fixed timestamp keeps the archive (and so CodeSha256) stable across deploys.
  const mtime = new Date('2020-01-01T00:00:00Z');
  for (const rel of files) {
    const full = path.join(root, rel);
    const st = await stat(full);
    zip.addBuffer(await readFile(full), rel, { mtime, mode: st.mode & 0o111 ? 0o100755 : 0o100644 });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
