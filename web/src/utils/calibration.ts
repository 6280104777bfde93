// The calibration formula of the worker (manual §4.2), for the live preview
// on the device page: ppm = k·v_raw + b + t_comp·(temp − t_ref).
export interface Calib { k: number; b: number; t_comp: number; t_ref: number }

export function calcPpm(c: Calib, vRaw: number, temp: number | null | undefined): number {
  const t = temp === null || temp === undefined || !Number.isFinite(temp) ? c.t_ref : temp
  return c.k * vRaw + c.b + c.t_comp * (t - c.t_ref)
}

/** The same checks the API makes (40004): finite numbers, k non-zero. */
export function calibValid(c: Calib): boolean {
  return [c.k, c.b, c.t_comp, c.t_ref].every(Number.isFinite) && c.k !== 0
}
