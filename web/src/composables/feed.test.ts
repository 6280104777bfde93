import { describe, expect, it } from 'vitest'
import { nextBackoff } from './useDashboardFeed'
import { soundLevel, silenceKey, silenceFrames } from './useAlarmSound'

describe('reconnect backoff', () => {
  it('doubles from 1 s to at most 10 s', () => {
    expect(nextBackoff(0, 0.5)).toBe(1000)
    expect(nextBackoff(1000, 0.5)).toBe(2000)
    expect(nextBackoff(8000, 0.5)).toBe(10000)
    expect(nextBackoff(10000, 1)).toBe(12000)
    expect(nextBackoff(10000, 0)).toBe(8000)
  })
})

describe('alarm sound', () => {
  it('sounds the highest unsilenced level; a new alarm sounds again', () => {
    const a1 = { id: 1, level: 1 }, a2 = { id: 2, level: 2 }
    expect(soundLevel([a1, a2], new Set())).toBe(2)
    const sil = new Set([silenceKey(a1), silenceKey(a2)])
    expect(soundLevel([a1, a2], sil)).toBe(0)
    expect(soundLevel([a1, a2, { id: 3, level: 1 }], sil)).toBe(1)
    // a silenced level-1 alarm that rises to level 2 sounds again
    expect(soundLevel([{ id: 1, level: 2 }], new Set([silenceKey(a1)]))).toBe(2)
  })
})

describe('silence record frames', () => {
  it('sends the ids in bounded frames without a user, none for no ids', () => {
    expect(silenceFrames([])).toEqual([])
    expect(silenceFrames([3, 1])).toEqual([{ type: 'silence', ids: [3, 1] }])
    const ids = Array.from({ length: 450 }, (_, i) => 100000000 + i)
    const frames = silenceFrames(ids)
    expect(frames.map((f) => f.ids.length)).toEqual([200, 200, 50])
    expect(frames.flatMap((f) => f.ids)).toEqual(ids)
    for (const f of frames) expect(JSON.stringify(f).length).toBeLessThan(4096)
  })
})
