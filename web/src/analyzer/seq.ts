// Packet loss from the 16-bit wrapping sequence number (R-MQ-2: seq 0–65535).

export interface SeqState {
  prev: number // -1 before the first reading
  received: number
  lost: number
  duplicates: number
  resets: number
}

export function newSeqState(): SeqState {
  return { prev: -1, received: 0, lost: 0, duplicates: 0, resets: 0 }
}

/**
 * Steps the state with the next sequence number of a device, in time order.
 * A forward gap of g (mod 65536) means g - 1 lost packets; 0 is a duplicate;
 * a "gap" of more than half the range is a counter reset (reboot) or a
 * reordering, never 30,000 lost packets.
 */
export function stepSeq(st: SeqState, seq: number): void {
  if (seq < 0) return
  st.received++
  if (st.prev >= 0) {
    const gap = (seq - st.prev + 65536) & 0xffff
    if (gap === 0) st.duplicates++
    else if (gap > 32768) st.resets++
    else st.lost += gap - 1
  }
  st.prev = seq
}

export function lossPct(st: SeqState): number {
  const total = st.received - st.duplicates + st.lost
  return total > 0 ? (100 * st.lost) / total : 0
}
