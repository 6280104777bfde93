import { describe, expect, it } from 'vitest'
import { calcPpm, calibValid } from './calibration'
import { formatCountdown, formatDuration, formatPpm } from './format'
import { counts, markerState } from './marker'

describe('format', () => {
  it('durations', () => {
    expect(formatDuration(45)).toBe('45秒')
    expect(formatDuration(200, true)).toBe('3min 20s')
    expect(formatDuration(3900)).toBe('1小时 05分')
    expect(formatDuration(-5)).toBe('0秒')
  })
  it('countdown and ppm', () => {
    expect(formatCountdown(600)).toBe('10:00')
    expect(formatCountdown(59.2)).toBe('01:00')
    expect(formatPpm(null)).toBe('--')
    expect(formatPpm(1200.4)).toBe('1200')
    expect(formatPpm(45.25)).toBe('45.25')
  })
})

describe('calibration preview', () => {
  it('applies the worker formula', () => {
    expect(calcPpm({ k: 1.5, b: -10, t_comp: 0.1, t_ref: 25 }, 100, 35)).toBeCloseTo(141, 9)
    expect(calcPpm({ k: 2, b: 0, t_comp: 1, t_ref: 20 }, 10, null)).toBe(20)
    expect(calibValid({ k: 0, b: 0, t_comp: 0, t_ref: 20 })).toBe(false)
    expect(calibValid({ k: 1, b: NaN, t_comp: 0, t_ref: 20 })).toBe(false)
  })
})

describe('marker state', () => {
  it('maps status, level and faults to colours', () => {
    expect(markerState({ sn: 'a', ppm: 1, status: 'online' })).toBe('normal')
    expect(markerState({ sn: 'a', ppm: 1, status: 'alarm', level: 1 })).toBe('alarm1')
    expect(markerState({ sn: 'a', ppm: 1, status: 'alarm', level: 2 })).toBe('alarm2')
    expect(markerState({ sn: 'a', ppm: null, status: 'offline' })).toBe('offline')
    expect(markerState({ sn: 'a', ppm: 1, status: 'online', bat: 15 })).toBe('fault')
    expect(markerState({ sn: 'a', ppm: 1, status: 'online', err: 1 })).toBe('fault')
    expect(markerState({ sn: 'a', ppm: 1, status: 'online', err: 40 })).toBe('normal')
  })
  it('counts', () => {
    expect(counts([{ sn: 'a', ppm: 1, status: 'alarm' }, { sn: 'b', ppm: 1, status: 'offline' }, { sn: 'c', ppm: 1, status: 'online' }]))
      .toEqual({ online: 2, offline: 1, alarm: 1 })
  })
})

import { toPercent } from './plan'
describe('plan percentages', () => {
  it('maps a drop point to percentages of the plan, clamped', () => {
    const r = { left: 100, top: 50, width: 800, height: 400 }
    expect(toPercent(500, 250, r)).toEqual({ x: 50, y: 50 })
    expect(toPercent(100 + 800 / 3, 50, r)).toEqual({ x: 33.33, y: 0 })
    expect(toPercent(2000, -10, r)).toEqual({ x: 100, y: 0 })
  })
})
