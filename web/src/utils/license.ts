// When the big screen must show the blocking license notice (R-LIC, manual §4.5):
// the license answers locked/expired/invalid, or the API refuses with a
// license business code (20001–20004). A build without the license module
// answers 501: nothing to enforce.
export function licenseBlocks(lic: { status?: string; locked?: boolean } | null, err?: { status: number; code: number } | null): boolean {
  if (lic) return !!lic.locked || ['locked', 'expired', 'invalid'].includes(String(lic.status))
  if (err) return err.status !== 501 && err.code >= 20001 && err.code <= 20004
  return false
}
