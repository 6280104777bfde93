// End-to-end entry (scripts/web.sh e2e). Suite "client" needs only the
// built app; suite "stack" runs against the real stack (stack.mjs) and is
// skipped, visibly, when a part of it (mcs-api) is not built.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch, runAll } from './harness.mjs'
import { serveDist } from './static.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, '../../dist')
let failed = 0

const browser = await launch()
try {
  {
    const srv = await serveDist(dist)
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, timezoneId: 'UTC', locale: 'zh-CN' })
    const page = await context.newPage()
    page.on('pageerror', (e) => console.log('page error:', e.message))
    await import('./analyzer.spec.mjs')
    failed += await runAll('client', { page, baseUrl: srv.url })
    await context.close()
    await srv.close()
  }
  {
    const { runStack } = await import('./stack.mjs')
    failed += await runStack(browser)
  }
} finally {
  await browser.close()
}
process.exit(failed ? 1 : 0)
