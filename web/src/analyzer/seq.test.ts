import { describe, expect, it } from 'vitest'
import { lossPct, newSeqState, stepSeq } from './seq'

describe('seq loss', () => {
  it('counts gaps across the 65535 wrap', () => {
    const st = newSeqState()
    for (const s of [65533, 65534, 65535, 0, 1, 4]) stepSeq(st, s)
    expect(st.lost).toBe(2) // 2 and 3
    expect(st.received).toBe(6)
    expect(lossPct(st)).toBeCloseTo((100 * 2) / 8, 9)
  })
  it('treats a wrap gap exactly', () => {
    const st = newSeqState()
    stepSeq(st, 65530)
    stepSeq(st, 5) // 65531..65535, 0..4 lost = 10
    expect(st.lost).toBe(10)
  })
  it('counts duplicates and resets, not losses', () => {
    const st = newSeqState()
    for (const s of [100, 101, 101, 102, 0, 1]) stepSeq(st, s)
    expect(st.duplicates).toBe(1)
    expect(st.resets).toBe(1)
    expect(st.lost).toBe(0)
  })
  it('ignores missing seq', () => {
    const st = newSeqState()
    stepSeq(st, -1)
    expect(st.received).toBe(0)
  })
})
