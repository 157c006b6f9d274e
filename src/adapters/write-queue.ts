/**
 * The write queue of the runtimes whose socket writes may take only part of what they are given: Bun's
 * `socket.write` (synchronous: it returns how many bytes the kernel took, 0 when its buffer is full) and
 * Deno's `conn.write` (a promise of how many bytes it wrote).
 *
 * Invariants:
 * - Bytes go out in the order they were queued, each exactly once: the tail of a partial write is written
 *   before anything queued after it. A buffer handed to `write` is kept (a view on it, for a tail), never
 *   copied or modified.
 * - `bufferedAmount` is what is queued and not yet taken by the socket; `write` returns false while it is
 *   above the high-water mark (the client's writeHighWaterMark).
 * - One write to the socket at a time. A synchronous socket that takes less than offered is written to
 *   again only from `drain()` (Bun's drain callback), never from a later `write`; an asynchronous one is
 *   written to again as soon as its promise settles.
 * - `onDrain` is reported, never from inside `write`, each time bytes that had to wait are taken and leave
 *   the queue at or below the mark; `onIdle` each time the queue becomes empty (for `end()`).
 * - After `clear()` nothing is written or reported any more.
 *
 * Standard APIs only.
 */

/** The socket a queue writes to. */
export interface PartialWriter {
  /**
   * Writes a prefix of `bytes` and says how long it was: at once (Bun; a negative number once the socket is
   * closing) or as a promise (Deno; a rejection is a failed socket).
   */
  write(bytes: Uint8Array): number | Promise<number>;
}

export interface WriteQueueEvents {
  /** Bytes that waited were taken and the queue is at or below the high-water mark. */
  onDrain(): void;
  /** The queue became empty: everything queued was taken by the socket. */
  onIdle?(): void;
  /** The socket's write failed (a rejected promise or a throw). The queue is cleared. */
  onError(error: unknown): void;
}

const EMPTY = new Uint8Array(0);

export class WriteQueue {
  readonly #socket: PartialWriter;
  readonly #highWaterMark: number;
  readonly #events: WriteQueueEvents;
  /** Bytes not yet taken, oldest first, from #head on; the head may be the tail of a partial write. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  /** A write of the head is under way (an unsettled promise), or the flush loop is running. */
  #writing = false;
  #cleared = false;

  /**
   * @example
   * const q = new WriteQueue({ write: (b) => socket.write(b) }, 64 * 1024, { onDrain, onIdle, onError });
   * q.write(bytes); // from Bun's drain callback: q.drain()
   */
  constructor(socket: PartialWriter, highWaterMark: number, events: WriteQueueEvents) {
    this.#socket = socket;
    this.#highWaterMark = highWaterMark;
    this.#events = events;
  }

  /** Bytes queued and not yet taken by the socket. */
  get bufferedAmount(): number {
    return this.#buffered;
  }

  /** Nothing is queued (and so nothing is being written). */
  get empty(): boolean {
    return this.#head === this.#chunks.length;
  }

  /**
   * Queues `bytes` (now owned by the queue) and writes them at once if nothing is ahead of them. True while
   * the queue is at or below the high-water mark. After `clear()` the bytes are dropped and it returns true:
   * nothing will be written any more, and there is nothing to wait for either.
   */
  write(bytes: Uint8Array): boolean {
    if (this.#cleared) return true;
    if (bytes.byteLength > 0) {
      const wasEmpty = this.empty;
      this.#chunks.push(bytes);
      this.#buffered += bytes.byteLength;
      // Behind a backlog, only queue: a synchronous socket's backlog is written from drain(), which then
      // reports onDrain; an asynchronous one's by the write under way.
      if (wasEmpty && !this.#writing) this.#flush(false);
    }
    return this.#buffered <= this.#highWaterMark;
  }

  /** The socket can take more again (Bun's drain callback): writes on from the head. */
  drain(): void {
    if (!this.#writing && !this.#cleared) this.#flush(true);
  }

  /** Drops everything queued; nothing is written or reported afterwards. */
  clear(): void {
    this.#cleared = true;
    this.#chunks = [];
    this.#head = this.#buffered = 0;
  }

  /**
   * Writes from the head until the queue is empty, a synchronous socket takes less than offered, or an
   * asynchronous write is under way. `waited`: the bytes written now were queued before this call.
   */
  #flush(waited: boolean): void {
    this.#writing = true;
    let took = false;
    while (!this.#cleared && this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head]!;
      let n: number | Promise<number>;
      try {
        n = this.#socket.write(chunk);
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (typeof n !== "number") {
        n.then(
          (m) => this.#afterAsync(m),
          (e: unknown) => this.#fail(e),
        );
        return; // still writing
      }
      if (n < 0) break; // closing: the socket's close follows
      took ||= n > 0;
      if (!this.#take(n)) break; // partial: the rest waits for drain()
    }
    this.#writing = false;
    if (this.#cleared) return;
    // Reported once per drain, as soon as the backlog is down to the mark rather than only when it is empty:
    // the client can queue more while the socket writes the rest.
    if (waited && took && this.#buffered <= this.#highWaterMark) this.#events.onDrain();
    // onDrain may have queued more (written already: #writing was false) or cleared the queue.
    if (this.empty && !this.#cleared) this.#events.onIdle?.();
  }

  #afterAsync(n: number): void {
    if (this.#cleared) return;
    this.#take(n);
    if (this.#buffered <= this.#highWaterMark) this.#events.onDrain();
    // onDrain may have queued more (behind this write: #writing is still true) or cleared the queue.
    if (this.#cleared) return;
    // The rest of a partial write, or the next chunk.
    if (this.#head < this.#chunks.length) this.#flush(true);
    else {
      this.#writing = false;
      this.#events.onIdle?.();
    }
  }

  /** The socket took `n` bytes of the head. True when that finished the head chunk. */
  #take(n: number): boolean {
    const chunk = this.#chunks[this.#head]!;
    const taken = Math.min(Math.max(n, 0), chunk.byteLength);
    this.#buffered -= taken;
    if (taken < chunk.byteLength) {
      this.#chunks[this.#head] = chunk.subarray(taken);
      return false;
    }
    this.#chunks[this.#head++] = EMPTY;
    if (this.#head === this.#chunks.length) this.#chunks.length = this.#head = 0;
    // A backlog that never empties must not keep a placeholder for every chunk ever written.
    else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }

  #fail(e: unknown): void {
    if (this.#cleared) return;
    this.clear();
    this.#writing = false;
    this.#events.onError(e);
  }
}
