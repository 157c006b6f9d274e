/**
 * The channel pipeline, inbound: what the broker sends on channels 1…channel_max once the connection is open
 * — replies to the request in flight, deliveries, returns, publisher confirms, the broker's own
 * channel.close / basic.cancel / channel.flow — and settling everything when a channel ends.
 *
 * Rules it keeps:
 * - A reply must answer the channel's request in flight; anything else is 505 unexpected frame.
 * - A delivery reaches the application only for a consumer the channel has. One for a tag the machine does
 *   not know (never consumed, cancelled, or cancelled by the broker) is answered with basic.reject
 *   (requeue) by the machine itself and never emitted; one for a no-ack consumer cancelled with no-wait is
 *   dropped (the broker already counts it as delivered). Nothing here can throw: the reject is a method the
 *   machine builds.
 * - After our channel.close only close-ok (and the broker's crossing close) matter; confirms still settle.
 */
import type { Method } from "../codec/amqp/methods.generated.ts";
import type { Assembly, ChannelState } from "./channel.ts";
import { ContentAssembler } from "./content.ts";
import { type MachineCore, reason, REPLY } from "./core.ts";
import type { CloseReason, CloseScope, Content, ReturnEvent } from "./events.ts";
import { failQueued, METHOD_INFO, type Pipeline } from "./pipeline.ts";

export class ChannelInput {
  private readonly core: MachineCore;
  private readonly pipeline: Pipeline;
  private readonly channels: Map<number, ChannelState>;
  readonly content: ContentAssembler;

  constructor(core: MachineCore, pipeline: Pipeline, channels: Map<number, ChannelState>) {
    this.core = core;
    this.pipeline = pipeline;
    this.channels = channels;
    this.content = new ContentAssembler(core, (ch, a, body) => this.onContent(ch, a, body));
  }

  method(ch: ChannelState, m: Method): void {
    if (ch.assembly !== undefined) {
      this.core.protocolError(REPLY.UNEXPECTED_FRAME, `${m.name} on channel ${ch.id} while a message's content was arriving`, m);
      return;
    }
    if (ch.lifecycle === "closing") {
      this.closingMethod(ch, m);
      return;
    }
    switch (m.name) {
      case "basic.deliver": {
        const fate = ch.consumerFate(m.consumerTag);
        if (fate === "reject") this.core.writeMethod(ch.id, { name: "basic.reject", classId: 60, methodId: 90, deliveryTag: m.deliveryTag, requeue: true });
        this.content.begin(ch, m, 0, fate === "deliver");
        return;
      }
      case "basic.return":
        this.content.begin(ch, m, 0, true);
        return;
      case "basic.ack":
      case "basic.nack":
        this.onConfirm(ch, m.deliveryTag, m.multiple, m.name === "basic.ack");
        return;
      case "basic.cancel":
        // The broker cancelled a consumer (consumer_cancel_notify): later deliveries for it are unknown.
        ch.cancelConsumer(m.consumerTag, false);
        if (!m.noWait) this.core.writeMethod(ch.id, { name: "basic.cancel-ok", classId: 60, methodId: 31, consumerTag: m.consumerTag });
        this.core.emit({ type: "consumerCancelled", channel: ch.id, consumerTag: m.consumerTag });
        return;
      case "channel.flow":
        this.core.writeMethod(ch.id, { name: "channel.flow-ok", classId: 20, methodId: 21, active: m.active });
        this.core.emit({ type: "channelFlow", channel: ch.id, active: m.active });
        return;
      case "channel.close":
        this.core.writeMethod(ch.id, { name: "channel.close-ok", classId: 20, methodId: 41 });
        this.closeChannel(ch, reason("broker", m.replyCode, m.replyText, m.failingClassId, m.failingMethodId), "channel");
        return;
    }
    const inFlight = ch.inFlight;
    if (inFlight === undefined || !inFlight.responses.includes(m.name)) {
      this.core.protocolError(REPLY.UNEXPECTED_FRAME, `unexpected ${m.name} on channel ${ch.id}${inFlight ? ` (waiting for a reply to ${inFlight.name})` : ""}`, m);
      return;
    }
    if (m.name === "basic.get-ok") {
      this.content.begin(ch, m, inFlight.requestId, true); // the reply is emitted when its content is complete
      return;
    }
    this.onReply(ch, m, undefined);
  }

  /** After we sent channel.close: only close-ok (and the broker's own close) matter; acks still settle. */
  private closingMethod(ch: ChannelState, m: Method): void {
    switch (m.name) {
      case "channel.close-ok": {
        const requestId = ch.closeRequestId;
        ch.closeRequestId = 0;
        if (requestId !== 0) this.core.emit({ type: "reply", channel: ch.id, requestId, method: m, message: undefined });
        this.closeChannel(ch, ch.closeReason!, "channel");
        return;
      }
      case "channel.close":
        this.core.writeMethod(ch.id, { name: "channel.close-ok", classId: 20, methodId: 41 });
        return;
      case "basic.ack":
      case "basic.nack":
        this.onConfirm(ch, m.deliveryTag, m.multiple, m.name === "basic.ack");
        return;
      default:
        // Content in flight when we closed: take its header and body frames in, then drop it.
        if (METHOD_INFO.get(m.name)?.content) this.content.begin(ch, m, 0, false);
        return;
    }
  }

  private onReply(ch: ChannelState, m: Method, message: Content | undefined): void {
    if (m.name === "basic.consume-ok" && ch.consumers.has(m.consumerTag)) {
      // A tag already in use on this channel would make two consumers one: the broker is broken. The consume
      // request fails with the close, like everything else pending.
      this.core.protocolError(REPLY.COMMAND_INVALID, `basic.consume-ok on channel ${ch.id} gave consumer tag ${m.consumerTag}, which is already in use`, m);
      return;
    }
    const inFlight = ch.inFlight!;
    ch.inFlight = undefined;
    switch (m.name) {
      case "channel.open-ok":
        ch.lifecycle = "open";
        break;
      case "basic.consume-ok":
        ch.addConsumer(m.consumerTag, inFlight.consumerNoAck);
        break;
      case "basic.cancel-ok":
        ch.cancelConsumer(m.consumerTag, false);
        break;
    }
    this.core.emit({ type: "reply", channel: ch.id, requestId: inFlight.requestId, method: m, message });
    this.pipeline.flush(ch);
  }

  private onConfirm(ch: ChannelState, deliveryTag: number | bigint, multiple: boolean, ack: boolean): void {
    for (const seq of ch.settle(deliveryTag, multiple)) {
      const returned = ch.returned.get(seq);
      if (returned) ch.returned.delete(seq);
      this.core.emit({ type: "publishConfirmed", channel: ch.id, seq, ack, returned });
    }
  }

  private onContent(ch: ChannelState, a: Assembly, body: Uint8Array): void {
    const message: Content = { properties: a.properties!, body };
    const m = a.method;
    switch (m.name) {
      case "basic.deliver":
        this.core.emit({
          type: "delivery",
          channel: ch.id,
          consumerTag: m.consumerTag,
          deliveryTag: m.deliveryTag,
          redelivered: m.redelivered,
          exchange: m.exchange,
          routingKey: m.routingKey,
          message,
        });
        return;
      case "basic.get-ok":
        this.onReply(ch, m, message);
        return;
      case "basic.return": {
        const publishSeq = ch.confirm ? ch.matchReturn(m.exchange, m.routingKey) : undefined;
        const event: ReturnEvent = {
          type: "return",
          channel: ch.id,
          replyCode: m.replyCode,
          replyText: m.replyText,
          exchange: m.exchange,
          routingKey: m.routingKey,
          message,
          publishSeq,
        };
        if (publishSeq !== undefined) ch.returned.set(publishSeq, event);
        this.core.emit(event);
        return;
      }
    }
  }

  /** A channel is gone: settle everything pending on it with `scope`, forget it, report it. */
  closeChannel(ch: ChannelState, why: CloseReason, scope: CloseScope): void {
    const core = this.core;
    failQueued(core, ch, why, scope);
    if (ch.inFlight) {
      core.emit({ type: "requestFailed", channel: ch.id, requestId: ch.inFlight.requestId, reason: why, scope });
      ch.inFlight = undefined;
    }
    if (ch.closeRequestId !== 0) {
      core.emit({ type: "requestFailed", channel: ch.id, requestId: ch.closeRequestId, reason: why, scope });
      ch.closeRequestId = 0;
    }
    for (const seq of ch.unconfirmed.keys()) core.emit({ type: "publishFailed", channel: ch.id, seq, reason: why, scope });
    ch.unconfirmed.clear();
    ch.returned.clear();
    ch.consumers.clear();
    ch.cancelledNoWait.clear();
    this.content.drop(ch);
    this.channels.delete(ch.id);
    core.emit({ type: "channelClosed", channel: ch.id, reason: why, scope });
  }
}
