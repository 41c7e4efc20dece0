/**
 * Term and position arithmetic of Aeron's log buffers (aeron_logbuffer_descriptor.h). Positions are
 * JS numbers: they stay exact below 2^53, which is 2^29 terms of 16 MiB (years at full speed).
 */

export const TERM_MIN_LENGTH = 64 * 1024;
export const TERM_MAX_LENGTH = 1024 * 1024 * 1024;
export const MAX_UDP_PAYLOAD_LENGTH = 65504;
export const DEFAULT_MTU = 1408;
export const DEFAULT_TERM_LENGTH = 16 * 1024 * 1024;
export const DEFAULT_RECEIVER_WINDOW = 128 * 1024;
export const MAX_MESSAGE_LENGTH_CAP = 16 * 1024 * 1024;

export function isValidTermLength(termLength: number): boolean {
  return Number.isInteger(termLength) && termLength >= TERM_MIN_LENGTH && termLength <= TERM_MAX_LENGTH && (termLength & (termLength - 1)) === 0;
}

/** The C receiver refuses an image (silently) for an MTU outside these rules (§3.2, pitfall 12). */
export function isValidMtu(mtu: number): boolean {
  return Number.isInteger(mtu) && mtu >= 64 && mtu <= MAX_UDP_PAYLOAD_LENGTH && mtu % 32 === 0 && mtu <= DEFAULT_RECEIVER_WINDOW;
}

export function maxMessageLength(termLength: number): number {
  return Math.min(termLength / 8, MAX_MESSAGE_LENGTH_CAP);
}

export function positionBitsToShift(termLength: number): number {
  return 31 - Math.clz32(termLength);
}

/** Wrapping 32-bit term count (aeron_sub_wrap_i32). */
export function termCount(termId: number, initialTermId: number): number {
  return (termId - initialTermId) | 0;
}

export function computePosition(termId: number, termOffset: number, termLength: number, initialTermId: number): number {
  return termCount(termId, initialTermId) * termLength + termOffset;
}

export function termIdAt(position: number, termLength: number, initialTermId: number): number {
  return (initialTermId + Math.floor(position / termLength)) | 0;
}

export function termOffsetAt(position: number, termLength: number): number {
  return position % termLength;
}

export function receiverWindowFor(termLength: number, initialWindow = DEFAULT_RECEIVER_WINDOW): number {
  return Math.min(termLength / 2, initialWindow);
}

/** Framed length of a message of `length` bytes fragmented at `mtu - 32` bytes (aeron_logbuffer_compute_fragmented_length). */
export function fragmentedLength(length: number, maxPayload: number): number {
  const full = Math.floor(length / maxPayload);
  const rest = length % maxPayload;
  return full * (maxPayload + 32) + (rest > 0 ? (rest + 32 + 31) & ~31 : 0) + (length === 0 ? 32 : 0);
}
