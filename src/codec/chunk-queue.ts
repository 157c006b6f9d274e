/**
 * The inbound side of the streaming envelope: the chunks a decoder has received and not yet consumed.
 *
 * A list of chunks and a position, never one growing buffer (re-concatenating on every read makes
 * reassembly quadratic). Bytes that lie inside one chunk are read in place; only a span across chunks is
 * copied, once. Consumed chunks are dropped by advancing an index and compacting in batches: `shift()` per
 * chunk made a frame fed one byte at a time quadratic (the fuzzer found it).
 *
 * The queue keeps references to pushed chunks and never writes to them.
 */
const EMPTY = new Uint8Array(0);

export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  private total = 0;

  /** Bytes held and not consumed. */
  get length(): number {
    return this.total;
  }

  /** The chunk holding the next unconsumed byte (for reading in place), or an empty array when none. */
  get headChunk(): Uint8Array {
    return this.chunks[this.head] ?? EMPTY;
  }

  /** Index of the next unconsumed byte inside `headChunk`. */
  get headOffset(): number {
    return this.offset;
  }

  /**
   * Adds a chunk at the end.
   * @example const q = new ChunkQueue(); q.push(Uint8Array.of(1, 2)); q.length; // 2
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * The next `n` bytes without consuming them: a view when they lie in one chunk, a copy when they span
   * several. The caller checks `length >= n` first.
   * @example q.push(Uint8Array.of(1)); q.push(Uint8Array.of(2, 3)); q.peek(2); // Uint8Array [1, 2] (a copy)
   */
  peek(n: number): Uint8Array {
    const first = this.headChunk;
    if (this.offset + n <= first.length) return first.subarray(this.offset, this.offset + n);
    const out = new Uint8Array(n);
    let filled = 0;
    let off = this.offset;
    for (let i = this.head; filled < n; i++) {
      const chunk = this.chunks[i]!;
      const k = Math.min(chunk.length - off, n - filled);
      out.set(chunk.subarray(off, off + k), filled);
      filled += k;
      off = 0;
    }
    return out;
  }

  /** The next `n` bytes as a new array the caller owns, consumed. */
  take(n: number): Uint8Array {
    const first = this.headChunk;
    const out = this.offset + n <= first.length ? first.slice(this.offset, this.offset + n) : this.peek(n);
    this.skip(n);
    return out;
  }

  /** Consumes `n` bytes. */
  skip(n: number): void {
    this.total -= n;
    let off = this.offset + n;
    const chunks = this.chunks;
    while (this.head < chunks.length && off >= chunks[this.head]!.length) {
      off -= chunks[this.head]!.length;
      chunks[this.head++] = EMPTY; // let the consumed chunk be collected
    }
    this.offset = off;
    if (this.head === chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= chunks.length) {
      this.chunks = chunks.slice(this.head);
      this.head = 0;
    }
  }
}
