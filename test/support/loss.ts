/**
 * Loss accounting for fault tests, Jepsen-style: every published message has an id, and each publish ends in
 * exactly one bucket — ok (confirmed), unknown (OutcomeUnknownError: lost with a connection), not sent
 * (NotConnectedError), nacked, or something else (a bug). After the faults a test drains the queue and checks
 * that every ok id arrived.
 */
import { type Consumer, NotConnectedError, OutcomeUnknownError, PublishNackedError } from "../../src/index.ts";

export interface Outcomes {
  readonly ok: string[];
  readonly unknown: string[];
  readonly notSent: string[];
  readonly nacked: string[];
  readonly other: unknown[];
}

export function outcomes(): Outcomes {
  return { ok: [], unknown: [], notSent: [], nacked: [], other: [] };
}

/** Files the publish of message `id` under its outcome once it settles; the returned promise never rejects. */
export function track(o: Outcomes, id: string, publish: Promise<void>): Promise<void> {
  return publish.then(
    () => void o.ok.push(id),
    (e: unknown) => {
      if (e instanceof OutcomeUnknownError) o.unknown.push(id);
      else if (e instanceof NotConnectedError) o.notSent.push(id);
      else if (e instanceof PublishNackedError) o.nacked.push(id);
      else o.other.push(e);
    },
  );
}

/** How many publishes settled, whatever their outcome. */
export function settled(o: Outcomes): number {
  return o.ok.length + o.unknown.length + o.notSent.length + o.nacked.length + o.other.length;
}

/** Acks every message `consumer` delivers and records its body; the loop ends when the consumer does. */
export function receiveAll(consumer: Consumer): Set<string> {
  const received = new Set<string>();
  const loop = (async () => {
    for await (const m of consumer) {
      received.add(m.bodyText());
      m.ack();
    }
  })();
  loop.catch(() => undefined);
  return received;
}
