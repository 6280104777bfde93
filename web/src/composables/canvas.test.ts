import { describe, expect, it } from 'vitest'
import { fitCanvas } from './useDesignCanvas'

describe('design canvas', () => {
  it('scales 1920×1080 to 1080p and 4K alike, letterboxes other shapes', () => {
    expect(fitCanvas(1920, 1080)).toEqual({ scale: 1, x: 0, y: 0 })
    expect(fitCanvas(3840, 2160)).toEqual({ scale: 2, x: 0, y: 0 })
    // 16:10 wall: full width, bars above and below
    expect(fitCanvas(1920, 1200)).toEqual({ scale: 1, x: 0, y: 60 })
    // ultra-wide: full height, bars left and right
    expect(fitCanvas(2560, 1080)).toEqual({ scale: 1, x: 320, y: 0 })
    expect(fitCanvas(0, 0).scale).toBe(1)
  })
})
