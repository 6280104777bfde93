import { describe, expect, it } from 'vitest'
import { landingPath } from './landing'

describe('landing after login', () => {
  it('sends an admin to the overview and a viewer to the wall screen', () => {
    for (const r of [undefined, '', '/', '/login', '/login?redirect=%2F', 'https://evil.example/', '//evil.example/x']) {
      expect(landingPath(true, r)).toBe('/admin/overview')
      expect(landingPath(false, r)).toBe('/dashboard')
    }
  })
  it('goes back to the page a session expired on, when the role may open it', () => {
    expect(landingPath(true, '/admin/devices?status=alarm')).toBe('/admin/devices?status=alarm')
    expect(landingPath(true, '/dashboard')).toBe('/dashboard')
    expect(landingPath(false, '/dashboard')).toBe('/dashboard')
    expect(landingPath(false, '/admin/users')).toBe('/dashboard')
    expect(landingPath(false, '/admin')).toBe('/dashboard')
  })
})
