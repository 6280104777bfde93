// The wall screen's own behaviour (issue #19) against the real stack: the
// same picture on a 1080p and a 4K wall, every device reachable from the
// tray, the controller's alarm list (order, 首警, latched, batch
// acknowledge, checked in PostgreSQL), a sound indicator that never claims
// a sound the browser does not play (with and without the autoplay policy,
// Chinese and English), and a stale screen that is grey everywhere (read
// from the screenshot's pixels).
import { chromium } from 'playwright-core'
import { spec, expect, waitFor, CHROMIUM_ARGS } from './harness.mjs'

const GAS = "('HIGH', 'LOW', 'OVER_RANGE')"
const TRAY_N = 100

async function login(page, base, pass) {
  await page.goto(`${base}/login`)
  await page.getByTestId('login-user').fill('admin')
  await page.getByTestId('login-pass').fill(pass)
  await page.getByTestId('login-submit').click()
  await page.waitForURL(/\/admin/)
}

/** Boxes of the screen's main parts as fractions of the viewport. */
async function layout(page) {
  const vp = page.viewportSize()
  const out = {}
  for (const sel of ['.topbar', '.side', '.plan-area', '[data-testid="legend"]', '[data-testid="count-alarm"]', '[data-testid="alarm-total"]', '[data-testid="tray"]']) {
    const b = await page.locator(sel).first().boundingBox()
    out[sel] = b && [b.x / vp.width, b.y / vp.height, b.width / vp.width, b.height / vp.height]
  }
  return out
}

/**
 * Pixels of a PNG whose colour is strong (max − min channel > 90): green,
 * red, yellow markers and chips are far above, the screen's dark blue and
 * any grey far below. Decoded in a blank page (no CSP there).
 */
async function vividPixels(scratch, png) {
  return scratch.evaluate(async (b64) => {
    const img = new Image()
    img.src = `data:image/png;base64,${b64}`
    await img.decode()
    const c = document.createElement('canvas')
    c.width = img.width; c.height = img.height
    const g = c.getContext('2d')
    g.drawImage(img, 0, 0)
    const d = g.getImageData(0, 0, c.width, c.height).data
    let n = 0
    for (let i = 0; i < d.length; i += 4) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 90) n++
    return n
  }, png.toString('base64'))
}

export function screenSpecs(st) {
  const live = new Map()
  const timer = setInterval(() => { for (const [sn, r] of live) st.reading(sn, r) }, 1000)
  const prevStop = st.onStop
  st.onStop = () => { prevStop?.(); clearInterval(timer) }
  const alarmId = (sn, extra = '') => st.sql(`SELECT coalesce(max(id), 0) FROM alarm_logs WHERE sn = '${sn}' ${extra}`)

  spec('wall screen: 1920×1080 and 3840×2160 show the same layout; the tray reaches every device', async ({ browser }) => {
    for (let i = 0; i < TRAY_N; i++) {
      const r = await st.api('POST', '/api/devices', { sn: `E2E-T${String(i).padStart(3, '0')}`, name: `托盘${i}`, location: 'T', high_limit: 100 })
      expect(r.status === 200 || r.status === 201, `add device ${i}: ${r.status} ${r.text}`)
    }
    const unplaced = Number(st.sql('SELECT count(*) FROM devices WHERE pos_x IS NULL OR pos_y IS NULL'))
    const seen = []
    for (const [w, h] of [[1920, 1080], [3840, 2160]]) {
      const ctx = await browser.newContext({ viewport: { width: w, height: h } })
      const p = await ctx.newPage()
      await login(p, st.baseUrl, st.password)
      await p.goto(`${st.baseUrl}/dashboard`)
      await waitFor(async () => (await p.getByTestId('tray-more').count()) > 0, { timeout: 15000, desc: `tray paging at ${w}` })
      await p.waitForTimeout(800) // fonts and the plan image settle before the photograph
      await p.screenshot({ path: `${st.shots}/screen_layout_${w}x${h}.png` })
      seen.push({ w, box: await layout(p), font: await p.getByTestId('count-alarm').evaluate((el) => el.getBoundingClientRect().height) })
      if (w === 1920) {
        // Every device reachable: the hint names what is not shown, and the pages together hold every unplaced device.
        const more = p.getByTestId('tray-more')
        const hidden = Number(await more.getAttribute('data-hidden'))
        const shown = await p.locator('[data-testid="tray"] .chip').count()
        expect(hidden === unplaced - shown && hidden > 0, `"+N more": hidden ${hidden}, shown ${shown}, unplaced ${unplaced}`)
        expect((await more.textContent()).includes(`+${hidden}`), `hint text: ${await more.textContent()}`)
        await p.getByTestId('tray').hover() // holds the automatic page turn while the test turns pages
        const sns = new Set()
        const pages = Math.ceil(unplaced / shown)
        for (let k = 0; k < pages; k++) {
          for (const id of await p.locator('[data-testid="tray"] .chip').evaluateAll((els) => els.map((e) => e.dataset.testid))) sns.add(id)
          const first = await p.locator('[data-testid="tray"] .chip').first().getAttribute('data-testid')
          if (k === pages - 1) break
          await p.getByTestId('tray-next').click() // a kiosk turns by itself every 10 s
          await waitFor(async () => (await p.locator('[data-testid="tray"] .chip').first().getAttribute('data-testid')) !== first, { desc: `page ${k + 2}` })
        }
        expect(sns.size === unplaced, `chips seen over ${pages} pages: ${sns.size} of ${unplaced}`)
      }
      await ctx.close()
    }
    const [a, b] = seen
    for (const [sel, fa] of Object.entries(a.box)) {
      const fb = b.box[sel]
      expect(fa && fb, `${sel} on both screens`)
      const d = Math.max(...fa.map((v, i) => Math.abs(v - fb[i])))
      expect(d < 0.004, `${sel} at ${fa.map((v) => v.toFixed(3))} (1080p) vs ${fb.map((v) => v.toFixed(3))} (4K)`)
    }
    expect(Math.abs(b.font / a.font - 2) < 0.05, `4K type twice as large: ${a.font} → ${b.font} px`)
  })

  spec('alarm list: unacknowledged, acknowledged, latched; newest first; 首警 a gas alarm; latched marker; batch acknowledge', async ({ screen }) => {
    // A clean episode: the earlier specs' gas alarms cleared (limits raised) and acknowledged.
    for (const sn of st.sql(`SELECT DISTINCT sn FROM alarm_logs WHERE cleared_at IS NULL AND alarm_type IN ${GAS}`).split('\n').filter(Boolean)) {
      await st.api('PUT', `/api/devices/${sn}`, { high_limit: 100000, high_limit2: 200000 })
      st.reading(sn, { v_raw: 1 })
    }
    await waitFor(() => st.sql(`SELECT count(*) FROM alarm_logs WHERE cleared_at IS NULL AND alarm_type IN ${GAS}`) === '0', { timeout: 20000, desc: 'earlier gas alarms cleared' })
    for (const id of st.sql('SELECT id FROM alarm_logs WHERE ack_at IS NULL').split('\n').filter(Boolean)) await st.api('POST', `/api/alarms/${id}/ack`, { note: 'setup' })
    for (const sn of ['E2E-F1', 'E2E-G1', 'E2E-G2', 'E2E-G3']) await st.api('POST', '/api/devices', { sn, name: sn.slice(4), location: 'L', high_limit: 100 })
    await screen.goto(`${st.baseUrl}/dashboard`)
    // The fault comes first in time: 首警 must still be a gas alarm.
    live.set('E2E-F1', { v_raw: 1, bat: 10 })
    await waitFor(() => alarmId('E2E-F1', "AND alarm_type = 'LOW_BAT'") !== '0', { timeout: 20000, desc: 'LOW_BAT fault' })
    for (const sn of ['E2E-G1', 'E2E-G2']) {
      live.set(sn, { v_raw: 150 })
      await waitFor(() => alarmId(sn, "AND alarm_type = 'HIGH'") !== '0', { timeout: 20000, desc: `${sn} HIGH` })
    }
    const g1 = alarmId('E2E-G1'), g2 = alarmId('E2E-G2'), f1 = alarmId('E2E-F1')
    await st.api('POST', `/api/alarms/${g2}/ack`, { note: 'seen' }) // active, acknowledged
    live.set('E2E-G1', { v_raw: 1 }) // cleared, not acknowledged: latched
    await waitFor(() => st.sql(`SELECT cleared_at IS NOT NULL FROM alarm_logs WHERE id = ${g1}`) === 't', { timeout: 20000, desc: 'G1 cleared' })
    live.set('E2E-G3', { v_raw: 150 })
    await waitFor(() => alarmId('E2E-G3', "AND alarm_type = 'HIGH'") !== '0', { timeout: 20000, desc: 'G3 HIGH' })
    const g3 = alarmId('E2E-G3')
    const want = [g3, f1, g2, g1].map(Number)
    const mine = new Set(want)
    let order = []
    await waitFor(async () => {
      order = (await screen.locator('[data-testid^="alarm-item-"]').evaluateAll((els) => els.map((e) => Number(e.dataset.testid.slice(11)))))
        .filter((id) => mine.has(id))
      return JSON.stringify(order) === JSON.stringify(want)
    }, { timeout: 15000, desc: `list order ${want} (G3 new, F1 fault, G2 acked, G1 latched)` }).catch((e) => { throw new Error(`${e.message}; shown ${order}`) })
    expect(await screen.getByTestId(`alarm-item-${g3}`).isVisible(), 'the newest alarm is in view')
    await waitFor(async () => (await screen.getByTestId('first-alarm').getAttribute('data-id')) === g1, { desc: `首警 is G1 (${g1}), the first gas alarm, not the fault ${f1}` })
    const tag = screen.locator(`[data-testid="alarm-item-${g1}"] [data-testid="latched-tag"]`)
    expect(await tag.count() === 1 && /待确认|awaiting/.test(await tag.textContent()), 'latched item says 待确认 (awaiting acknowledgement)')
    await waitFor(async () => (await screen.getByTestId('chip-E2E-G1').getAttribute('data-state')) === 'latched', { desc: 'latched device keeps its marker' })
    const outline = await screen.getByTestId('chip-E2E-G1').evaluate((el) => getComputedStyle(el).boxShadow)
    expect(/255, 23, 68/.test(outline), `latched chip has a red outline (${outline})`)
    await screen.screenshot({ path: `${st.shots}/screen_alarm_list.png` })
    // Batch acknowledge: every unacknowledged alarm, one note, rows in PostgreSQL.
    await screen.getByTestId('ack-all').click()
    await screen.locator('.el-message-box input').fill('批量确认')
    await screen.locator('.el-message-box .el-button--primary').click()
    await waitFor(() => st.sql('SELECT count(*) FROM alarm_logs WHERE ack_at IS NULL') === '0', { timeout: 15000, desc: 'all acknowledged in alarm_logs' })
    expect(st.sql(`SELECT string_agg(ack_by || '|' || ack_note, ',' ORDER BY id) FROM alarm_logs WHERE id IN (${g1}, ${g3}, ${f1})`) === 'admin|批量确认,admin|批量确认,admin|批量确认', 'ack_by/ack_note of the batch')
    await waitFor(async () => (await screen.locator(`[data-testid="alarm-item-${g1}"]`).count()) === 0, { desc: 'acknowledged latched alarm leaves the list' })
    live.delete('E2E-F1')
    live.set('E2E-G2', { v_raw: 1 })
    live.set('E2E-G3', { v_raw: 1 })
  }, { shot: 'screen' })

  spec('sound indicator: blocked without autoplay until one click, playing with it (zh, en)', async ({ browser }) => {
    live.set('E2E-G4', { v_raw: 150 })
    await st.api('POST', '/api/devices', { sn: 'E2E-G4', name: 'G4', location: 'L', high_limit: 100 })
    await waitFor(() => st.sql("SELECT count(*) FROM alarm_logs WHERE sn = 'E2E-G4' AND cleared_at IS NULL AND ack_at IS NULL") !== '0', { timeout: 20000, desc: 'an open, unacknowledged gas alarm' })
    // Headless Chromium allows autoplay by default; the desktop default is
    // document-user-activation-required, which is what a wall PC without the flag has.
    const strict = await chromium.launch({
      executablePath: process.env.MCS_CHROMIUM || '/usr/bin/chromium', headless: true,
      args: [...CHROMIUM_ARGS.filter((a) => !a.startsWith('--autoplay-policy')), '--autoplay-policy=document-user-activation-required'],
    })
    try {
      for (const [lang, banner, word] of [['zh-CN', '报警声音无法播放', '声音无法播放'], ['en', 'Alarm sound CANNOT play', 'Sound cannot play']]) {
        const ctx = await strict.newContext({ viewport: { width: 1920, height: 1080 } })
        await ctx.addInitScript((l) => localStorage.setItem('mcs.locale', l), lang)
        const lp = await ctx.newPage()
        await login(lp, st.baseUrl, st.password)
        // A fresh tab opened on the screen's address, as a wall PC does after a
        // reboot: the login clicks gave that tab's documents a user activation.
        const p = await ctx.newPage()
        await lp.close()
        // Nothing may touch the page's DOM before the screen has mounted:
        // Playwright evaluates with a user gesture, which would unlock audio.
        // The feed's WebSocket opens in the same task as the AudioContext.
        const ws = p.waitForEvent('websocket', { timeout: 15000 })
        await p.goto(`${st.baseUrl}/dashboard?kiosk=1`)
        await ws
        await waitFor(async () => (await p.locator('[data-sn="E2E-G4"]').count()) > 0, { timeout: 15000, desc: 'the alarm is listed' })
        const ind = p.getByTestId('sound-indicator')
        await waitFor(async () => (await ind.getAttribute('data-state')) === 'blocked', { desc: `${lang}: indicator says blocked (was ${await ind.getAttribute('data-state')})` })
        expect((await ind.textContent()).includes(word), `${lang} indicator text: ${await ind.textContent()}`)
        expect(await p.getByTestId('sound-blocked').isVisible(), `${lang}: banner over the kiosk screen`)
        expect((await p.getByTestId('sound-blocked').textContent()).includes(banner), `${lang} banner text`)
        await p.screenshot({ path: `${st.shots}/screen_sound_blocked_${lang}.png` })
        await p.mouse.click(700, 500) // one click anywhere
        await waitFor(async () => (await ind.getAttribute('data-state')) === 'playing-1' && (await ind.getAttribute('data-can-play')) === 'true', { desc: `${lang}: playing after one click` })
        expect(await p.getByTestId('sound-blocked').count() === 0, 'banner gone')
        await ctx.close()
      }
    } finally {
      await strict.close()
    }
    // The autoplay flag (the documented kiosk start): playing from the start, no banner.
    const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } })
    const p = await ctx.newPage()
    await login(p, st.baseUrl, st.password)
    await p.goto(`${st.baseUrl}/dashboard?kiosk=1`)
    const ind = p.getByTestId('sound-indicator')
    await waitFor(async () => (await ind.getAttribute('data-state')) === 'playing-1' && (await ind.getAttribute('data-can-play')) === 'true', { timeout: 15000, desc: 'playing with autoplay allowed' })
    expect(await p.getByTestId('sound-blocked').count() === 0, 'no banner with autoplay allowed')
    await ctx.close()
  })

  spec('stale feed: every coloured element goes grey (screenshot pixels)', async ({ screen, browser }) => {
    const scratch = await browser.newPage() // decodes screenshots, outside the app's CSP
    try {
      await screen.goto(`${st.baseUrl}/dashboard`)
      await waitFor(async () => (await screen.locator('.tray .chip').count()) > 0 && (await screen.getByTestId('stale-banner').count()) === 0, { timeout: 15000, desc: 'live screen' })
      await screen.waitForTimeout(1500)
      // the plan with its markers when there is one (without a plan the tray takes its place)
      const parts = ['.counts', '.tray', '.side', ...((await screen.locator('.plan').count()) ? ['.plan'] : [])]
      for (const sel of parts) {
        const n = await vividPixels(scratch, await screen.locator(sel).first().screenshot())
        expect(n > 50, `${sel} is coloured while live (${n} vivid pixels)`)
      }
      await st.killApi()
      try {
        await waitFor(async () => (await screen.getByTestId('stale-banner').count()) > 0, { timeout: 15000, desc: 'stale banner' })
        await screen.waitForTimeout(500)
        await screen.screenshot({ path: `${st.shots}/screen_stale_grey.png` })
        for (const sel of parts) {
          const n = await vividPixels(scratch, await screen.locator(sel).first().screenshot())
          expect(n === 0, `${sel} grey while stale (${n} vivid pixels)`)
        }
      } finally {
        await st.startApi()
      }
      await waitFor(async () => (await screen.getByTestId('stale-banner').count()) === 0, { timeout: 30000, desc: 'recovered' })
    } finally {
      await scratch.close()
    }
  }, { shot: 'screen' })
}
