import type { TailIo } from '../../src/collector/tail-io.js';

interface Inode {
  readonly ino: number;
  data: Buffer;
}

/**
 * Files in memory, as the tailer sees them through TailIo: paths name inodes, descriptors keep an
 * inode readable after its path is renamed or unlinked, and the link count is the number of paths
 * naming it. For pure unit tests of the tailer's decisions (no disk, no thread pool, no sleeps).
 */
export class MemoryFiles implements TailIo {
  readonly dev = 1;
  private nextIno = 100;
  private nextFd = 3;
  private readonly paths = new Map<string, Inode>();
  private readonly fds = new Map<number, Inode>();

  /** Creates `path` (a new inode) or replaces its content in place (same inode). */
  write(path: string, content: string | Buffer): void {
    const data = Buffer.from(content);
    const node = this.paths.get(path);
    if (node === undefined) this.paths.set(path, { ino: this.nextIno++, data });
    else node.data = data;
  }

  append(path: string, content: string | Buffer): void {
    const node = this.node(path);
    node.data = Buffer.concat([node.data, Buffer.from(content)]);
  }

  truncate(path: string, length = 0): void {
    const node = this.node(path);
    node.data = node.data.subarray(0, length);
  }

  rename(from: string, to: string): void {
    this.paths.set(to, this.node(from));
    this.paths.delete(from);
  }

  unlink(path: string): void {
    this.node(path);
    this.paths.delete(path);
  }

  content(path: string): Buffer {
    return this.node(path).data;
  }

  inoOf(path: string): number {
    return this.node(path).ino;
  }

  open(path: string): number {
    const fd = this.nextFd++;
    this.fds.set(fd, this.node(path));
    return fd;
  }

  async read(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    const data = this.byFd(fd).data;
    if (position >= data.length) return 0;
    return data.copy(buf, offset, position, Math.min(data.length, position + length));
  }

  async fstat(fd: number): Promise<{ size: number; nlink: number }> {
    const node = this.byFd(fd);
    let nlink = 0;
    for (const n of this.paths.values()) if (n === node) nlink++;
    return { size: node.data.length, nlink };
  }

  async stat(path: string): Promise<{ dev: number; ino: number } | undefined> {
    const node = this.paths.get(path);
    return node === undefined ? undefined : { dev: this.dev, ino: node.ino };
  }

  private node(path: string): Inode {
    const node = this.paths.get(path);
    if (node === undefined) throw new Error(`ENOENT: ${path}`);
    return node;
  }

  private byFd(fd: number): Inode {
    const node = this.fds.get(fd);
    if (node === undefined) throw new Error(`EBADF: ${fd}`);
    return node;
  }
}
