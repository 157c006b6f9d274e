/**
 * Every timer the connection has, in one table (quinn-proto's `TimerTable`): the machine's caller arms one
 * real timer at `earliest()` and calls `handleTimeout(now)` when it fires.
 *
 *   handshake   connection opened + handshakeTimeout       → the connection fails ("handshake did not finish")
 *   closeOk     connection.close handed out + closeTimeout → the connection ends without close-ok
 *   heartbeat   last transmit + T/2                        → a heartbeat frame is written
 *   deadPeer    last input + T + T/4                       → look again RECHECK_MS later; still nothing → dead
 *
 * T is the negotiated heartbeat. Each deadline is computed in exactly one place (`rearm*`), from the facts
 * the machine reports: `sent(now)`, `received(now)`, `readPaused`, the handshake's and the close's progress.
 *
 * Why these formulas: RabbitMQ sends a heartbeat every T/2 and declares the client dead after two missed ones,
 * i.e. after about T of silence; we do the same, plus a quarter of T for a heartbeat still on the wire. The
 * dead-peer deadline never judges at once: when it is reached the host may have been stalled, with the
 * broker's heartbeats waiting in the socket behind our timer. A short re-check lets the caller's event loop
 * read them first; only if nothing arrived meanwhile is the peer dead. (A stall of 2T used to close a
 * healthy connection; a blackholed peer used to take 2T to notice.)
 */

/** Index of each timer kind in the table. */
export const TIMER = { handshake: 0, closeOk: 1, heartbeat: 2, deadPeer: 3 } as const;
export type TimerKind = (typeof TIMER)[keyof typeof TIMER];

/** How long after the dead-peer deadline to look again, so input waiting behind the timer is read first. */
export const RECHECK_MS = 50;

export class Timers {
  /** Deadline per kind, in the caller's milliseconds; Infinity when not armed. */
  private readonly at: number[] = [Infinity, Infinity, Infinity, Infinity];
  private heartbeatMs = 0;
  private lastSent: number;
  private lastReceived: number;
  /** A heartbeat frame is written and not yet handed out. */
  private heartbeatQueued = false;
  private readPaused = false;
  /** The dead-peer deadline was reached once; the re-check is armed. */
  private rechecking = false;
  /** A connection.close is written; its close-ok wait starts when it is handed out. */
  private closeOkPending = false;
  private readonly closeTimeout: number;

  constructor(now: number, handshakeTimeout: number, closeTimeout: number) {
    this.lastSent = now;
    this.lastReceived = now;
    this.closeTimeout = closeTimeout;
    if (handshakeTimeout > 0) this.at[TIMER.handshake] = now + handshakeTimeout;
  }

  /** The earliest deadline, or undefined when none is armed. */
  earliest(): number | undefined {
    const t = Math.min(this.at[0]!, this.at[1]!, this.at[2]!, this.at[3]!);
    return t === Infinity ? undefined : t;
  }

  /** Whether timer `kind` is due at `now`. */
  due(kind: TimerKind, now: number): boolean {
    return now >= this.at[kind]!;
  }

  /** The negotiated heartbeat, in ms (0: off). */
  get heartbeat(): number {
    return this.heartbeatMs;
  }

  // -------------------------------------------------------------------------------------------------------
  // Facts reported by the machine

  /** Bytes were handed out by pollTransmit. */
  sent(now: number): void {
    this.lastSent = now;
    this.heartbeatQueued = false;
    if (this.closeOkPending) {
      this.closeOkPending = false;
      this.at[TIMER.closeOk] = now + this.closeTimeout;
    }
    this.rearmHeartbeat();
  }

  /** Bytes arrived from the broker. */
  received(now: number): void {
    this.lastReceived = now;
    this.rechecking = false;
    this.rearmDeadPeer();
  }

  /** The caller stopped or resumed reading; silence while not reading proves nothing. */
  setReadPaused(paused: boolean, now: number): void {
    this.readPaused = paused;
    if (!paused) this.received(now);
    else this.rearmDeadPeer();
  }

  /** Tuning agreed on a heartbeat of `ms` (0: off). */
  startHeartbeats(ms: number): void {
    this.heartbeatMs = ms;
    this.rearmHeartbeat();
    this.rearmDeadPeer();
  }

  /** A heartbeat frame was written; the next one is due after it is handed out. */
  heartbeatWritten(): void {
    this.heartbeatQueued = true;
    this.rearmHeartbeat();
  }

  /**
   * The dead-peer deadline is due: returns true when the peer is to be declared dead now, false when a
   * re-check was armed instead (the first time the deadline is reached).
   */
  judgePeer(now: number): boolean {
    if (this.rechecking) return true;
    this.rechecking = true;
    this.at[TIMER.deadPeer] = now + RECHECK_MS;
    return false;
  }

  /** How long nothing has arrived, for the reason text. */
  silentFor(now: number): number {
    return now - this.lastReceived;
  }

  handshakeDone(): void {
    this.at[TIMER.handshake] = Infinity;
  }

  /** connection.close was written: only the close-ok wait is left (armed when it is handed out). */
  closing(): void {
    this.at[TIMER.handshake] = Infinity;
    this.closeOkPending = true;
    this.startHeartbeats(0);
  }

  /** The connection is over: nothing is armed any more. */
  closed(): void {
    this.closeOkPending = false;
    this.heartbeatMs = 0;
    this.at.fill(Infinity);
  }

  // -------------------------------------------------------------------------------------------------------
  // The deadline formulas, each written once

  private rearmHeartbeat(): void {
    this.at[TIMER.heartbeat] = this.heartbeatMs === 0 || this.heartbeatQueued ? Infinity : this.lastSent + this.heartbeatMs / 2;
  }

  private rearmDeadPeer(): void {
    if (this.heartbeatMs === 0 || this.readPaused) this.at[TIMER.deadPeer] = Infinity;
    else if (!this.rechecking) this.at[TIMER.deadPeer] = this.lastReceived + this.heartbeatMs + this.heartbeatMs / 4;
  }
}
