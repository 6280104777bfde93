// The one request wrapper (STYLE web app): adds the bearer token and
// Accept-Language, turns the API's `{code,message,detail}` error body into a
// readable, translated ApiError, and sends a 401 to the login page.
import { i18n, currentLocale } from '@/locales'

export class ApiError extends Error {
  constructor(public status: number, public code: number, message: string, public detail?: string) {
    super(message)
  }
}

const TOKEN_KEY = 'mcs.token'
let onUnauthorized: () => void = () => {}

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY)
}
export function setToken(t: string | null): void {
  if (t) localStorage.setItem(TOKEN_KEY, t)
  else localStorage.removeItem(TOKEN_KEY)
}
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn
}

export type Query = Record<string, string | number | boolean | undefined | null>

function withQuery(url: string, q?: Query): string {
  if (!q) return url
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `${url}?${s}` : url
}

/** Translates a business code (manual §10.5) or HTTP status into words. */
export function errorText(status: number, code: number, message?: string): string {
  const t = i18n.global.t
  const key = `errors.code.${code}`
  if (code && i18n.global.te(key)) return t(key)
  if (message) return message
  if (status === 401) return t('errors.unauthorized')
  if (status === 403) return t('errors.forbidden')
  if (status === 429) return t('errors.tooMany')
  if (status >= 500) return t('errors.server')
  return t('errors.http', { status })
}

/**
 * What a person reads for a failed call: the translated words and, beside
 * them, the server's reason (`detail`, e.g. "sn: 1..32 of A-Z a-z 0-9 _ -"),
 * so a validation error says what to fix instead of only 请求参数错误.
 */
export function errorMessage(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const detail = e instanceof ApiError ? e.detail?.trim() : ''
  return detail && !e.message.includes(detail) ? `${e.message}: ${detail}` : e.message
}

interface Options {
  method?: string
  query?: Query
  body?: unknown
  form?: FormData
  blob?: Blob // sent as the raw body with its own type (image uploads)
  raw?: boolean // return the Response (downloads)
  timeoutMs?: number
}

export async function request<T>(url: string, opt: Options = {}): Promise<T> {
  const headers: Record<string, string> = { 'Accept-Language': currentLocale(), Accept: 'application/json' }
  const tok = getToken()
  if (tok) headers.Authorization = `Bearer ${tok}`
  let body: BodyInit | undefined
  if (opt.form) body = opt.form
  else if (opt.blob) {
    headers['Content-Type'] = opt.blob.type || 'application/octet-stream'
    body = opt.blob
  }
  else if (opt.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opt.body)
  }
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(), opt.timeoutMs ?? 15000)
  let res: Response
  try {
    res = await fetch(withQuery(url, opt.query), { method: opt.method ?? 'GET', headers, body, signal: ctl.signal })
  } catch (e) {
    const aborted = (e as Error).name === 'AbortError'
    throw new ApiError(0, 0, i18n.global.t(aborted ? 'errors.timeout' : 'errors.network'))
  } finally {
    clearTimeout(timer)
  }
  if (!res.ok) {
    let code = 0, message: string | undefined, detail: string | undefined
    try {
      const j = await res.json()
      code = Number(j.code) || 0
      message = j.message
      detail = j.detail
    } catch { /* not JSON: status alone */ }
    // 10001 is a wrong password (login, or the old one of a password change):
    // the session itself is fine, so only other 401s send to the login page.
    if (res.status === 401 && code !== 10001 && !url.endsWith('/auth/login')) onUnauthorized()
    throw new ApiError(res.status, code, errorText(res.status, code, message), detail)
  }
  if (opt.raw) return res as unknown as T
  if (res.status === 204) return undefined as T
  const ct = res.headers.get('Content-Type') || ''
  return (ct.includes('json') ? res.json() : res.text()) as Promise<T>
}

/** Downloads a response body as a file (exports, archives). */
export async function download(url: string, filename: string, opt: Options = {}): Promise<void> {
  const res = await request<Response>(url, { ...opt, raw: true, timeoutMs: opt.timeoutMs ?? 120000 })
  const blob = await res.blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  const cd = res.headers.get('Content-Disposition')
  const m = cd && /filename="?([^";]+)"?/.exec(cd)
  a.download = m ? m[1] : filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 10000)
}
