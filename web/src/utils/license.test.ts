import { describe, expect, it } from 'vitest'
import { graceHours, licenseBlocks } from './license'

describe('licenseBlocks', () => {
  it('blocks on locked and missing, not on valid or grace', () => {
    expect(licenseBlocks({ status: 'locked' })).toBe(true)
    expect(licenseBlocks({ status: 'missing' })).toBe(true)
    expect(licenseBlocks({ status: 'valid' })).toBe(false)
    expect(licenseBlocks({ status: 'grace' })).toBe(false)
  })
  it('blocks on a 403 with 20001, 20002 or 20004; not on the device limit 20003', () => {
    expect(licenseBlocks(null, { status: 403, code: 20001 })).toBe(true)
    expect(licenseBlocks(null, { status: 403, code: 20004 })).toBe(true)
    expect(licenseBlocks(null, { status: 403, code: 20003 })).toBe(false)
    expect(licenseBlocks(null, { status: 400, code: 20001 })).toBe(false) // a refused upload
  })
})

describe('graceHours', () => {
  it('rounds down and is null outside grace', () => {
    expect(graceHours({ status: 'grace', grace_left_s: 3 * 3600 + 59 })).toBe(3)
    expect(graceHours({ status: 'valid', grace_left_s: null })).toBeNull()
  })
})
