// Display helpers shared by the pages (pure, tested in format.test.ts).

/** "1 h 05 min", "3 min 20 s", "45 s" — alarm durations on the screen. */
export function formatDuration(seconds: number, en = false): string {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0
  const s = Math.floor(seconds)
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60
  const u = en ? { d: 'd', h: 'h', m: 'min', s: 's' } : { d: '天', h: '小时', m: '分', s: '秒' }
  const p2 = (n: number) => String(n).padStart(2, '0')
  if (d > 0) return `${d}${u.d} ${h}${u.h}`
  if (h > 0) return `${h}${u.h} ${p2(m)}${u.m}`
  if (m > 0) return `${m}${u.m} ${p2(sec)}${u.s}`
  return `${sec}${u.s}`
}

/** mm:ss for countdowns (the 10-minute debug window). */
export function formatCountdown(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds))
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}

export function formatPpm(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '--'
  const a = Math.abs(v)
  return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : v.toFixed(2).replace(/0$/, '')
}

export function pad2(n: number): string {
  return String(n).padStart(2, '0')
}

/** Local "YYYY-MM-DD HH:mm:ss" of a Date, ISO string or Unix seconds. */
export function formatTime(v: Date | string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '--'
  const d = v instanceof Date ? v : typeof v === 'number' ? new Date(v * 1000) : new Date(v)
  if (Number.isNaN(d.getTime())) return String(v)
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '--'
  const u = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`
}

/** Device error codes of R-MQ-5 that have words in the locale files. */
export const KNOWN_ERR = [0, 1, 2, 3, 10, 11, 20, 21, 30, 40, 50]

export function toSeconds(v: string | number | null | undefined): number {
  if (v === null || v === undefined) return NaN
  if (typeof v === 'number') return v
  return new Date(v).getTime() / 1000
}
