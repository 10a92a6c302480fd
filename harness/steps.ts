/**
 * What each kind of step is, as the planning of a case sees it: the bytes it
 * sends, the message types it sends and waits to have echoed, the time it
 * takes. One exhaustive switch states it, so a new kind of step does not
 * compile until its traits are stated here; the runner, the session's bound
 * and the suite's echo check fold over these traits.
 */
import { type Step, unhandled } from "./case.ts";
import { Opcode } from "./frame.ts";
import { payloadLength } from "./payload.ts";

export type MessageType = "text" | "binary";

export interface StepTraits {
  /**
   * Payload bytes the step sends: a frameStart counts the length it announces
   * (its frameData steps count none), a close frame's few bytes count none.
   */
  payloadBytes: number;
  /** The type of message the step sends data of, by its opcode (none for control frames and raw bytes). */
  sentType?: MessageType;
  /** The type of message the step waits to have echoed (round trips). */
  echoType?: MessageType;
  /** Round trips the step runs, each waiting for its echo. */
  roundTrips?: number;
  /** Seconds the step pauses, whatever the peer does (wait). */
  pause?: number;
  /** Seconds the step waits for the peer at most, holding up the steps after it (waitForEvents). */
  waitLimit?: number;
  /** Seconds after the step at which the timer it arms fires (closeAfter, failAfter). */
  timer?: number;
}

/** The message type of a data frame's opcode; none for a continuation or control frame. */
function typeOfOpcode(opcode: number): MessageType | undefined {
  if (opcode === Opcode.Text) return "text";
  if (opcode === Opcode.Binary) return "binary";
  return undefined;
}

/** What a step sends, waits for and arms. */
export function stepTraits(step: Step): StepTraits {
  switch (step.kind) {
    case "frame":
      return {
        payloadBytes: payloadLength(step.frame.payload),
        sentType: typeOfOpcode(step.frame.opcode),
      };
    case "message":
      return {
        payloadBytes: payloadLength(step.message.payload),
        sentType: step.message.binary ? "binary" : "text",
      };
    case "close":
    case "frameData":
      return { payloadBytes: 0 };
    case "frameStart":
      return {
        payloadBytes: step.frameStart.length,
        sentType: typeOfOpcode(step.frameStart.opcode),
      };
    case "raw": // Bytes the suite does not parse: no type of their own.
      return { payloadBytes: payloadLength(step.raw) };
    case "roundTrips": {
      const { count, frame } = step.roundTrips;
      return {
        payloadBytes: payloadLength(frame.payload),
        sentType: typeOfOpcode(frame.opcode),
        echoType: frame.opcode === Opcode.Binary ? "binary" : "text",
        roundTrips: count,
      };
    }
    case "messageRoundTrips": {
      // One message at a time is in flight: the step holds, and sends at once, one message.
      const { size, binary, count } = step.messageRoundTrips;
      const type = binary ? "binary" : "text";
      return { payloadBytes: size, sentType: type, echoType: type, roundTrips: count };
    }
    case "wait":
      return { payloadBytes: 0, pause: step.wait };
    case "waitForEvents":
      return { payloadBytes: 0, waitLimit: step.waitForEvents.within };
    case "closeAfter":
      return { payloadBytes: 0, timer: step.closeAfter };
    case "failAfter":
      return { payloadBytes: 0, timer: step.failAfter };
    default:
      return unhandled(step);
  }
}
