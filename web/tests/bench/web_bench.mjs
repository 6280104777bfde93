// Web figures (issue #9), printed as `name: value` lines for make bench:
//   screen_load_kb       bytes mcs-api sends for the big screen's cold load
//                        (entry + the /dashboard route's static imports and
//                        CSS + zh-CN): each file's .br sibling as a brotli
//                        browser gets it (scripts/precompress.mjs), else .gz,
//                        else the file itself
//   screen_busy_pct      main-thread busy share (CDP TaskDuration) and
//   screen_fps           frames per second (requestAnimationFrame), with
//                        1,000 devices on the plan reporting every second
//   alarm_screen_p99_ms  reading published → that marker turns red
//   analyzer_day_s       one day of 1,000 devices (8.64 M rows) in the analyzer
// Real stack as in the e2e suite (tests/e2e/stack.mjs); devices from
// bench's mcs-loadgen (realistic mode, 1 s interval).
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { createGzip } from 'node:zlib'
import { launch, waitFor } from '../e2e/harness.mjs'
import { Stack, REPO } from '../e2e/stack.mjs'
import { serveDist } from '../e2e/static.mjs'

const DIST = join(REPO, 'web/dist')
const N = Number(process.env.BENCH_WEB_DEVICES || 1000)
const AN_DEVICES = Number(process.env.BENCH_WEB_ANALYZER_DEVICES || 1000)
const MEASURE_S = Number(process.env.BENCH_WEB_SECONDS || 20)
const AN_SLOTS = 360 * Number(process.env.BENCH_WEB_ANALYZER_HOURS || 24) // 10 s slots
const ONLY = process.env.BENCH_WEB_ONLY || ''
const log = (...a) => console.error('bench-web:', ...a)
const out = (k, v) => console.log(`${k}: ${v}`)

function screenLoadKb() {
  const man = JSON.parse(readFileSync(join(DIST, '.vite/manifest.json'), 'utf8'))
  const files = new Set(['index.html'])
  const walk = (key) => {
    const c = man[key]
    if (!c) return
    files.add(c.file)
    for (const css of c.css ?? []) files.add(css)
    for (const i of c.imports ?? []) if (!files.has(man[i]?.file)) walk(i)
  }
  walk('index.html')
  walk('src/views/DashboardView.vue')
  // the default locale is loaded before the first paint
  walk('src/locales/zh-CN.ts')
  let bytes = 0
  const size = (f) => statSync(f, { throwIfNoEntry: false })?.size
  for (const f of files) {
    const p = join(DIST, f)
    bytes += size(p + '.br') ?? size(p + '.gz') ?? size(p)
  }
  return bytes / 1024
}

async function screenFigures(browser) {
  const st = new Stack()
  st.shots = ''
  if (!st.available()) { log('build/mcsd, mcs-api or mcs missing: screen figures skipped'); return }
  await st.start()
  let lg = null
  try {
    const cols = Math.ceil(Math.sqrt(N * 16 / 9))
    st.sql(`INSERT INTO devices (sn, name, location, high_limit, pos_x, pos_y)
      SELECT 'BW' || lpad(i::text, 6, '0'), '点' || i, 'bench', 1000000,
             2 + 96 * (i % ${cols}) / ${cols}, 2 + 96 * (i / ${cols}) / ${Math.ceil(N / cols)}
      FROM generate_series(0, ${N - 1}) i`)
    const K = 20
    st.sql(`INSERT INTO devices (sn, name, location, high_limit, pos_x, pos_y)
      SELECT 'BA' || lpad(i::text, 6, '0'), '报警' || i, 'bench', 100, 5 + 4 * i, 97 FROM generate_series(0, ${K - 1}) i`)
    await new Promise((r) => setTimeout(r, 2500)) // registry NOTIFY → mcsd
    lg = spawn(join(st.bin, 'mcs-loadgen'), ['--host', st.svc.MQTT_HOST, '--port', st.svc.MQTT_PORT, '--devices', String(N), '--conns', '20',
      '--sn-prefix', 'BW', '--interval', '1', '--duration', String(MEASURE_S + 120), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] })
    for (let i = 0; i < K; i++) st.reading(`BA${String(i).padStart(6, '0')}`, { v_raw: 10 })

    const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } })
    const page = await ctx.newPage()
    await page.goto(`${st.baseUrl}/login`)
    await page.getByTestId('login-user').fill('admin')
    await page.getByTestId('login-pass').fill(st.password)
    await page.getByTestId('login-submit').click()
    await page.waitForURL(/\/admin/)
    await page.goto(`${st.baseUrl}/dashboard`)
    await waitFor(async () => (await page.locator('[data-testid^="marker-BW"]').count()) >= N, { timeout: 60000, desc: 'all markers' })
    await waitFor(async () => Number(await page.getByTestId('count-online').textContent()) >= N * 0.95, { timeout: 60000, desc: 'devices online' })
    await page.waitForTimeout(3000)

    const cdp = await ctx.newCDPSession(page)
    await cdp.send('Performance.enable')
    const metric = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]))
    await page.evaluate(() => { window.__frames = 0; const f = () => { window.__frames++; requestAnimationFrame(f) }; requestAnimationFrame(f) })
    const m0 = await metric(), t0 = Date.now(), f0 = await page.evaluate(() => window.__frames)
    await page.waitForTimeout(MEASURE_S * 1000)
    const m1 = await metric(), t1 = Date.now(), f1 = await page.evaluate(() => window.__frames)
    out('screen_busy_pct', (100 * (m1.TaskDuration - m0.TaskDuration) / ((t1 - t0) / 1000)).toFixed(1))
    out('screen_fps', ((f1 - f0) / ((t1 - t0) / 1000)).toFixed(1))

    // Reading published → marker red, one device at a time.
    await page.evaluate(() => {
      window.__red = {}
      new MutationObserver((ms) => {
        for (const m of ms) {
          const el = m.target
          if (el.dataset && /^alarm/.test(el.dataset.state || '') && !window.__red[el.dataset.testid]) window.__red[el.dataset.testid] = Date.now()
        }
      }).observe(document.querySelector('[data-testid="plan"]'), { attributes: true, subtree: true, attributeFilter: ['data-state'] })
    })
    const lat = []
    for (let i = 0; i < K; i++) {
      const sn = `BA${String(i).padStart(6, '0')}`
      const sent = Date.now()
      st.reading(sn, { v_raw: 500 })
      const seen = await waitFor(() => page.evaluate((id) => window.__red[id], `marker-${sn}`), { timeout: 30000, interval: 20, desc: `red ${sn}` })
      lat.push(seen - sent)
    }
    lat.sort((a, b) => a - b)
    out('alarm_screen_p99_ms', lat[Math.min(lat.length - 1, Math.ceil(0.99 * lat.length) - 1)])
    log(`alarm latencies ms: ${lat.join(' ')}`)
    await ctx.close()
  } finally {
    if (lg && lg.exitCode === null) lg.kill('SIGTERM')
    await st.stop()
  }
}

async function analyzerDay(browser) {
  const file = join(REPO, '.run', `bench-web-day-${process.pid}.csv.gz`)
  log(`writing a day of ${AN_DEVICES} devices to ${file}`)
  const gz = createGzip({ level: 1 })
  const ws = createWriteStream(file)
  gz.pipe(ws)
  // One plant day of Asia/Shanghai (the analyzer's default zone), as mcsd
  // archives it: 2025-12-17 00:00 to 24:00 at +08:00.
  const T0 = Date.UTC(2025, 11, 16, 16) / 1000
  const iso = (t) => new Date(t * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00')
  gz.write('time,sn,v_raw,ppm,temp,humi,bat,rssi,seq\n')
  const sns = Array.from({ length: AN_DEVICES }, (_, i) => `D${String(i).padStart(6, '0')}`)
  for (let k = 0; k < AN_SLOTS; k++) {
    const ts = iso(T0 + k * 10)
    let chunk = ''
    for (let i = 0; i < AN_DEVICES; i++) chunk += `${ts},${sns[i]},${(1000 + (i % 50)).toFixed(1)},${(10 + (i % 7) + (k % 97 === 0 ? 200 : 0)).toFixed(2)},25.1,55.0,${90 - (k >> 10)},-${70 + (i % 30)},${k & 0xffff}\n`
    if (!gz.write(chunk)) await new Promise((r) => gz.once('drain', r))
  }
  await new Promise((r) => { ws.on('finish', r); gz.end() })
  log(`day file ${(statSync(file).size / 1048576).toFixed(1)} MB`)
  const srv = await serveDist(DIST)
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 } })
  const page = await ctx.newPage()
  try {
    await page.goto(`${srv.url}/analyzer`)
    const t0 = Date.now()
    await page.getByTestId('analyzer-input').setInputFiles(file)
    // The page must stay responsive meanwhile: the longest main-thread stall is logged.
    await page.evaluate(() => {
      window.__maxGap = 0; window.__gaps = []
      let last = performance.now()
      setInterval(() => { const n = performance.now(); const g = n - last; if (g > 300) window.__gaps.push([Math.round(last), Math.round(g), document.querySelector('[data-testid="stat-devices"]') ? 'done' : 'loading']); window.__maxGap = Math.max(window.__maxGap, g); last = n }, 50)
    })
    await waitFor(async () => (await page.getByTestId('stat-devices').count()) > 0, { timeout: 600000, interval: 250, desc: 'analyzer done' })
    const secs = (Date.now() - t0) / 1000
    const rows = (await page.getByTestId('stat-rows').textContent()).replace(/\D/g, '')
    if (Number(rows) !== AN_DEVICES * AN_SLOTS) throw new Error(`analyzer counted ${rows} rows, expected ${AN_DEVICES * AN_SLOTS}`)
    out('analyzer_day_s', secs.toFixed(1))
    log(`analyzer: ${rows} rows; longest main-thread gap ${Math.round(await page.evaluate(() => window.__maxGap))} ms; gaps > 300 ms [start, ms, phase]: ${JSON.stringify(await page.evaluate(() => window.__gaps))}`)
  } finally {
    await ctx.close()
    await srv.close()
    unlinkSync(file)
  }
}

const browser = await launch()
let rc = 0
try {
  out('screen_load_kb', screenLoadKb().toFixed(0))
  for (const fn of [screenFigures, analyzerDay].filter((f) => !ONLY || f.name.toLowerCase().includes(ONLY))) {
    try { await fn(browser) } catch (e) { log(e.stack || e); rc = 1 }
  }
} finally {
  await browser.close()
}
process.exit(rc)
