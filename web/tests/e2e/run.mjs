// End-to-end entry (scripts/web.sh e2e). Suite "client" needs only the
// built app (the analyzer is pure client side); suite "stack" runs against
// the real stack (stack.mjs) and is skipped, visibly, when a binary is missing.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch, runAll, spec, Skip, SHOTS } from './harness.mjs'
import { serveDist } from './static.mjs'
import { Stack } from './stack.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, '../../dist')
const only = process.env.MCS_E2E_SUITE || ''
let failed = 0

const browser = await launch()
try {
  if (!only || only === 'client') {
    const srv = await serveDist(dist)
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, timezoneId: 'UTC', locale: 'zh-CN' })
    const page = await context.newPage()
    page.on('pageerror', (e) => console.log('page error:', e.message))
    await import('./analyzer.spec.mjs')
    failed += await runAll('client', { page, baseUrl: srv.url })
    await context.close()
    await srv.close()
  }
  if (!only || only === 'stack') {
    const st = new Stack()
    st.shots = SHOTS
    if (!st.available()) {
      spec('real stack', () => { throw new Skip(`build/mcsd, build/mcs-api or build/mcs missing in ${st.bin}`) })
      await runAll('stack', {})
    } else {
      let startErr = null
      try { await st.start() } catch (e) { startErr = e }
      if (startErr) {
        // Counted as a failure in the summary, with the reason.
        spec('real stack starts', () => { throw startErr })
        failed += await runAll('stack', {})
        await st.stop()
      } else try {
        const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 }, acceptDownloads: true })
        const page = await ctx.newPage()
        const sctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } })
        const screen = await sctx.newPage()
        for (const p of [page, screen]) p.on('pageerror', (e) => console.log('page error:', e.message))
        // mcs-api's Content-Security-Policy (issue #16): anything the app
        // does that the policy blocks is a failure, not a silent breakage.
        const cspViolations = []
        for (const p of [page, screen]) {
          p.on('console', (m) => {
            if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text())
          })
        }
        // The big screen signs in once in its own context (the wall PC).
        await screen.goto(`${st.baseUrl}/login`)
        await screen.getByTestId('login-user').fill('admin')
        await screen.getByTestId('login-pass').fill(st.password)
        await screen.getByTestId('login-submit').click()
        await screen.waitForURL(/\/admin/)
        // MCS_E2E_SPECS=panel runs only the named spec files (default: all).
        const files = (process.env.MCS_E2E_SPECS || 'stack,panel,screen,admin').split(',')
        if (files.includes('stack')) (await import('./stack.spec.mjs')).stackSpecs(st)
        if (files.includes('panel')) (await import('./panel.spec.mjs')).panelSpecs(st)
        if (files.includes('screen')) (await import('./screen.spec.mjs')).screenSpecs(st)
        if (files.includes('admin')) (await import('./admin.spec.mjs')).adminSpecs(st)
        spec('no Content-Security-Policy violation in any page above', async () => {
          const r = await fetch(`${st.baseUrl}/`)
          if (!/frame-ancestors 'none'/.test(r.headers.get('content-security-policy') || '')) throw new Error('no CSP header on /')
          if (cspViolations.length) throw new Error(`${cspViolations.length} violations:\n${cspViolations.slice(0, 5).join('\n')}`)
        })
        failed += await runAll('stack', { page, screen, browser })
        await ctx.close()
        await sctx.close()
      } finally {
        st.onStop?.()
        await st.stop()
      }
    }
  }
} finally {
  await browser.close()
}
process.exit(failed ? 1 : 0)
