// When the app must show the blocking license notice (R-LI-5, issue #17):
// the license answers locked or missing, or the API refuses with a license
// business code (20001, 20002, 20004). 20003 (device limit) refuses one add,
// it locks nothing. The wall screen keeps its alarms visible beneath.
export const LOCKED_STATES = ['locked', 'missing']

export function licenseBlocks(lic: { status?: string } | null, err?: { status: number; code: number } | null): boolean {
  if (lic) return LOCKED_STATES.includes(String(lic.status))
  if (err) return err.status === 403 && [20001, 20002, 20004].includes(err.code)
  return false
}

/** Hours of grace left, rounded down; null outside grace. */
export function graceHours(lic: { status?: string; grace_left_s?: number | null } | null): number | null {
  if (!lic || lic.status !== 'grace' || lic.grace_left_s == null) return null
  return Math.floor(lic.grace_left_s / 3600)
}
