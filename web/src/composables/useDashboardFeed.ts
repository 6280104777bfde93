// Owns the big screen's WebSocket (/ws/dashboard, R-API-5): authenticates
// with the first message (never a token in the URL), applies `realtime` and
// `alarm` frames to the dashboard store, hands `config` events (devices,
// layout or floor plan changed, issue #19) to onConfig, answers `subscribe` with the
// `history` frame, keeps the link alive with pings, reconnects with backoff
// and says plainly when the feed is stale — a frozen screen that looks live
// is the worst failure (issue #9).
import { onBeforeUnmount, onMounted, ref } from 'vue'
import { getToken } from '@/api/request'
import { useDashboardStore, type RealtimeItem } from '@/stores/useDashboardStore'
import type { AlarmEvent } from '@/api/alarms'
import type { HistoryPoint } from '@/api/devices'

/** realtime frames come every second; this long without one is stale. */
export const STALE_AFTER_MS = 5000
const PING_MS = 20000
const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 10000

export interface FeedOptions {
  url?: string
  onLicense?: (code: number, message: string) => void
  onReconnect?: () => void
  /** A `config` event: what changed (`devices`, `layout`, `background`) is to be fetched again. */
  onConfig?: (what: string) => void
  /** The server refused the token (close 4001, e.g. it expired): sign in again. */
  onAuthFailed?: () => void
}

/** mcs-api closes with 4001 when the token is missing, bad or expired. */
export const CLOSE_UNAUTHORIZED = 4001

export function feedUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws/dashboard`
}

/** Next reconnect delay: doubling from 1 s up to 10 s, with ±20 % jitter. */
export function nextBackoff(prev: number, rnd = Math.random()): number {
  const base = prev ? Math.min(BACKOFF_MAX_MS, prev * 2) : BACKOFF_MIN_MS
  return Math.round(base * (0.8 + 0.4 * rnd))
}

export function useDashboardFeed(opt: FeedOptions = {}) {
  const store = useDashboardStore()
  const connected = ref(false) // socket open and authenticated
  const stale = ref(false)
  const staleSeconds = ref(0)
  const attempts = ref(0)
  let ws: WebSocket | null = null
  let backoff = 0
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null
  let pingTimer: ReturnType<typeof setInterval> | null = null
  let watchTimer: ReturnType<typeof setInterval> | null = null
  let stopped = false
  const waiting = new Map<string, ((p: HistoryPoint[]) => void)[]>()

  function send(m: unknown): void {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m))
  }

  function connect(): void {
    if (stopped) return
    attempts.value++
    const sock = new WebSocket(opt.url ?? feedUrl())
    ws = sock
    sock.onopen = () => send({ type: 'auth', token: getToken() ?? '' })
    sock.onmessage = (ev) => {
      let m: { type?: string; [k: string]: unknown }
      try { m = JSON.parse(String(ev.data)) } catch { return }
      switch (m.type) {
        case 'connected':
          connected.value = true
          backoff = 0
          if (attempts.value > 1) opt.onReconnect?.()
          break
        case 'realtime':
          store.applyRealtime((m.data as RealtimeItem[]) ?? [], m.ts as number | undefined)
          break
        case 'alarm':
          store.applyAlarmEvent(m.data as AlarmEvent)
          break
        case 'config':
          opt.onConfig?.(String(m.what ?? ''))
          break
        case 'history': {
          const sn = String(m.sn)
          const pts = ((m.points ?? m.data) as HistoryPoint[]) ?? []
          for (const fn of waiting.get(sn) ?? []) fn(pts)
          waiting.delete(sn)
          break
        }
        case 'error': {
          const code = Number(m.code)
          if (code >= 20001 && code <= 20004) opt.onLicense?.(code, String(m.message ?? ''))
          break
        }
      }
    }
    sock.onclose = (ev) => {
      if (ws === sock) ws = null
      connected.value = false
      if (stopped) return
      if (ev.code === CLOSE_UNAUTHORIZED && opt.onAuthFailed) {
        opt.onAuthFailed()
        return
      }
      backoff = nextBackoff(backoff)
      reconnectTimer = setTimeout(connect, backoff)
    }
    sock.onerror = () => sock.close()
  }

  function checkStale(): void {
    const last = store.lastFrameAt
    const age = last ? Date.now() - last : Infinity
    stale.value = !connected.value || age > STALE_AFTER_MS
    staleSeconds.value = Number.isFinite(age) ? Math.floor(age / 1000) : 0
  }

  /** The last hour at one point per minute for one device. */
  function history(sn: string, timeoutMs = 8000): Promise<HistoryPoint[]> {
    return new Promise((resolve, reject) => {
      const list = waiting.get(sn) ?? []
      const timer = setTimeout(() => reject(new Error('history timeout')), timeoutMs)
      list.push((p) => { clearTimeout(timer); resolve(p) })
      waiting.set(sn, list)
      send({ type: 'subscribe', sn })
    })
  }

  onMounted(() => {
    connect()
    pingTimer = setInterval(() => send({ type: 'ping' }), PING_MS)
    watchTimer = setInterval(checkStale, 500)
  })
  onBeforeUnmount(() => {
    stopped = true
    if (reconnectTimer) clearTimeout(reconnectTimer)
    if (pingTimer) clearInterval(pingTimer)
    if (watchTimer) clearInterval(watchTimer)
    ws?.close()
  })

  return { connected, stale, staleSeconds, attempts, history, send }
}
