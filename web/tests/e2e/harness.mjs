// A small end-to-end harness: Playwright (playwright-core) driving Debian's
// Chromium, specs run in order, a screenshot after every spec (pass or
// fail) under $MCS_TEST_RESULTS/e2e/, and junit XML for scripts/summarize.py.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

export const OUT = process.env.MCS_TEST_RESULTS || join(process.cwd(), '../build/test-results')
export const SHOTS = join(OUT, 'e2e')
mkdirSync(SHOTS, { recursive: true })

// PLATFORM.md: headless Chromium on this closed network needs the
// background-networking flags, else it keeps dialling Google.
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage',
]

export async function launch() {
  return chromium.launch({ executablePath: process.env.MCS_CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true })
}

const specs = []
/** Registers a spec; `shot` names the page of the context to photograph after it. */
export function spec(name, fn, { shot = 'page' } = {}) { specs.push({ name, fn, shot }) }

export class Skip extends Error {}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

export function expect(cond, msg) {
  if (!cond) throw new Error(msg)
}

export async function waitFor(fn, { timeout = 10000, interval = 100, desc = 'condition' } = {}) {
  const end = Date.now() + timeout
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) { last = e }
    if (Date.now() > end) throw new Error(`timed out waiting for ${desc}${last instanceof Error ? ': ' + last.message : ''}`)
    await new Promise((r) => setTimeout(r, interval))
  }
}

/** Runs every spec with a shared context object; returns the failure count. */
export async function runAll(suite, ctx) {
  const results = []
  for (const s of specs) {
    const t0 = Date.now()
    let status = 'pass', message = ''
    try {
      await s.fn(ctx)
    } catch (e) {
      if (e instanceof Skip) { status = 'skip'; message = e.message }
      else { status = 'fail'; message = (e && e.stack) || String(e) }
    }
    const secs = (Date.now() - t0) / 1000
    const shotPage = ctx[s.shot]
    if (shotPage && status !== 'skip') {
      const file = join(SHOTS, s.name.replace(/[^A-Za-z0-9_-]+/g, '_') + (status === 'fail' ? '.FAILED' : '') + '.png')
      await shotPage.screenshot({ path: file }).catch(() => {})
    }
    console.log(`e2e: ${status.toUpperCase()} ${s.name} (${secs.toFixed(1)} s)${status === 'pass' ? '' : '\n  ' + message.split('\n').slice(0, 4).join('\n  ')}`)
    results.push({ name: s.name, status, message, secs })
  }
  const cases = results.map((r) => {
    const inner = r.status === 'fail' ? `<failure message="${esc(r.message.split('\n')[0])}">${esc(r.message)}</failure>`
      : r.status === 'skip' ? `<skipped message="${esc(r.message)}"/>` : ''
    return `  <testcase classname="e2e.${suite}" name="${esc(r.name)}" time="${r.secs.toFixed(3)}">${inner}</testcase>`
  })
  const failed = results.filter((r) => r.status === 'fail').length
  writeFileSync(join(OUT, `e2e-${suite}.xml`),
    `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="e2e-${suite}" tests="${results.length}" failures="${failed}">\n${cases.join('\n')}\n</testsuite>\n`)
  specs.length = 0
  return failed
}
