// The plant's time zone for the analyzer: archive days, hours and times
// are the plant's (R-ST-4 names files by the plant's local day), never the
// browser's. Offsets come from Intl (the IANA database the browser ships),
// cached per quarter hour, since every zone changes offset on one.

export const DEFAULT_TZ = 'Asia/Shanghai'

/** True when the browser knows `tz` as an IANA zone name. */
export function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/**
 * Seconds east of UTC of one zone at a given instant. Calls on neighbouring
 * instants (rows arrive roughly in time order) hit a one-entry cache.
 */
export class ZoneOffset {
  readonly tz: string
  private readonly fmt: Intl.DateTimeFormat
  private key = NaN
  private off = 0
  private readonly starts = new Map<number, number>()

  /** Unknown zone names fall back to DEFAULT_TZ (the caller shows `tz`). */
  constructor(tz: string) {
    this.tz = validZone(tz) ? tz : DEFAULT_TZ
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: this.tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    })
  }

  /** Offset in seconds at Unix time `t` (seconds). */
  at(t: number): number {
    const k = Math.floor(t / 900)
    if (k === this.key) return this.off
    const base = k * 900
    const p: Record<string, number> = {}
    for (const part of this.fmt.formatToParts(new Date(base * 1000))) if (part.type !== 'literal') p[part.type] = Number(part.value)
    const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) / 1000
    this.key = k
    this.off = wall - base
    return this.off
  }

  /** Local day number (days since 1970-01-01 in the zone) of Unix time `t`. */
  day(t: number): number {
    return Math.floor((t + this.at(t)) / 86400)
  }

  /** Unix time of local midnight starting local day `day`. */
  dayStart(day: number): number {
    let t = this.starts.get(day)
    if (t === undefined) {
      const wall = day * 86400
      // Two steps settle the offset across a transition near midnight.
      const guess = wall - this.at(wall)
      t = wall - this.at(guess)
      this.starts.set(day, t)
    }
    return t
  }
}

/** "YYYY-MM-DD HH:mm:ss" of Unix seconds in zone `z`; "--" for NaN. */
export function formatInZone(t: number, z: ZoneOffset): string {
  if (!Number.isFinite(t)) return '--'
  const w = new Date(Math.round((t + z.at(t)) * 1000))
  const p2 = (n: number) => String(n).padStart(2, '0')
  return `${w.getUTCFullYear()}-${p2(w.getUTCMonth() + 1)}-${p2(w.getUTCDate())} ${p2(w.getUTCHours())}:${p2(w.getUTCMinutes())}:${p2(w.getUTCSeconds())}`
}
