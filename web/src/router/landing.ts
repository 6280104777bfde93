// Where a sign-in lands (issue #19): an admin on the admin overview, a
// viewer on the wall screen; a page the user was sent away from (the
// `redirect` query of an expired session) when that user may open it.
export const ADMIN_HOME = '/admin/overview'
export const VIEWER_HOME = '/dashboard'

export function homeOf(isAdmin: boolean): string {
  return isAdmin ? ADMIN_HOME : VIEWER_HOME
}

/** The path to open after a login; `redirect` is the login page's query. */
export function landingPath(isAdmin: boolean, redirect: unknown): string {
  const r = typeof redirect === 'string' ? redirect : ''
  // Only a path inside this app (not //host, not a URL), not the login or the root.
  if (!r.startsWith('/') || r.startsWith('//') || r === '/' || r.startsWith('/login')) return homeOf(isAdmin)
  if (!isAdmin && (r === '/admin' || r.startsWith('/admin/') || r.startsWith('/admin?'))) return VIEWER_HOME
  return r
}
