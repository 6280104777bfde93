// Real-stack specs (issue #9 "Tests"): each step checks what the browser
// shows and, where there is one, the ground truth (rows in PostgreSQL, bytes
// a capture server received, the .xlsx file's rows).
import { createServer } from 'node:http'
import { unzipSync, strFromU8 } from 'fflate'
import { readFileSync } from 'node:fs'
import { spec, expect, waitFor } from './harness.mjs'

const D1 = 'E2E-D1'
const D2 = 'E2E-D2'

export async function fill(page, id, value) {
  const loc = page.getByTestId(id)
  const tag = await loc.evaluate((el) => el.tagName)
  const input = tag === 'INPUT' || tag === 'TEXTAREA' ? loc : loc.locator('input')
  await input.fill(String(value))
  await input.blur()
}

export async function login(page, base, user, pass) {
  await page.goto(`${base}/login`)
  await page.getByTestId('login-user').fill(user)
  await page.getByTestId('login-pass').fill(pass)
  await page.getByTestId('login-submit').click()
}

/** Percent centre of an element inside another element's box. */
async function centrePct(page, sel, within) {
  const a = await page.locator(sel).boundingBox()
  const b = await page.locator(within).boundingBox()
  return { x: (100 * (a.x + a.width / 2 - b.x)) / b.width, y: (100 * (a.y + a.height / 2 - b.y)) / b.height }
}

export function stackSpecs(st) {
  // Simulated devices: each live device publishes every second at its v_raw.
  const live = new Map()
  const timer = setInterval(() => { for (const [sn, v] of live) st.reading(sn, { v_raw: v }) }, 1000)
  st.onStop = () => clearInterval(timer)

  spec('log in', async ({ page }) => {
    await login(page, st.baseUrl, 'admin', 'wrong-password')
    await waitFor(async () => (await page.getByTestId('login-error').count()) > 0, { desc: 'wrong password shown' })
    await page.getByTestId('login-pass').fill(st.password)
    await page.getByTestId('login-submit').click()
    await page.waitForURL(/\/admin\/overview/)
    await waitFor(async () => (await page.getByTestId('ov-total').textContent()).trim() !== '--', { desc: 'overview counts' })
    await page.waitForTimeout(500) // el-tag zooms in: let it finish before the screenshot
  })

  spec('add a device', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/devices`)
    await page.getByTestId('dev-add').click()
    await fill(page, 'add-sn', D1)
    await fill(page, 'add-name', '1号测试点')
    await fill(page, 'add-location', 'A区东侧')
    await fill(page, 'add-high', 1000)
    await page.getByTestId('add-save').click()
    await waitFor(async () => (await page.getByTestId('dev-table').textContent()).includes(D1), { desc: 'device in the list' })
    expect(st.sql(`SELECT name || '|' || location || '|' || high_limit FROM devices WHERE sn = '${D1}'`) === '1号测试点|A区东侧|1000', 'row in devices')
  })

  spec('calibrate and see the next value change', async ({ page }) => {
    live.set(D1, 100)
    await waitFor(() => st.sql(`SELECT count(*) FROM sensor_data WHERE sn = '${D1}'`) !== '0', { timeout: 15000, desc: 'first readings stored' })
    expect(Number(st.sql(`SELECT ppm FROM sensor_data WHERE sn = '${D1}' ORDER BY time DESC LIMIT 1`)) === 100, 'k=1 b=0: ppm = v_raw')
    await page.goto(`${st.baseUrl}/admin/devices`)
    await page.getByTestId(`dev-edit-${D1}`).click()
    await fill(page, 'ed-k', 2)
    await fill(page, 'ed-b', 10)
    await waitFor(async () => (await page.getByTestId('calib-preview').textContent()).includes('210'), { desc: 'live preview 2·100+10' })
    const t0 = st.sql('SELECT now()')
    await page.getByTestId('ed-save').click()
    await waitFor(() => st.sql(`SELECT calib_k || '/' || calib_b FROM devices WHERE sn = '${D1}'`) === '2/10', { desc: 'calibration stored' })
    await waitFor(() => st.sql(`SELECT ppm FROM sensor_data WHERE sn = '${D1}' AND time > '${t0}' ORDER BY time DESC LIMIT 1`) === '210', { timeout: 20000, desc: 'next reading calibrated' })
  })

  spec('send a command and see what became of it (issue #20)', async ({ page }) => {
    // D1 is a publisher without a command subscriber: the broker acknowledges
    // the command (delivered) and nobody answers it.
    await page.goto(`${st.baseUrl}/admin/devices`)
    await page.getByTestId(`dev-edit-${D1}`).click()
    await page.getByTestId('reboot-btn').click()
    await page.locator('.el-message-box__btns .el-button--primary').click()
    await waitFor(() => st.sql(`SELECT state FROM device_commands WHERE sn = '${D1}' AND cmd = 'reboot'`) === 'delivered', { desc: 'command recorded and delivered' })
    await waitFor(async () => /reboot[\s\S]*已送达/.test(await page.getByTestId('cmd-history').textContent()), { desc: 'the command and its state in the history' })
  })

  spec('upload a plan, drag the device onto it, save', async ({ page, browser }) => {
    // The plan image: a floor drawing rendered and photographed by Chromium itself.
    const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 } })
    const p2 = await ctx.newPage()
    await p2.setContent(`<body style="margin:0;background:#dfe6ee"><svg width="1600" height="900" xmlns="http://www.w3.org/2000/svg">
      <rect x="40" y="40" width="700" height="380" fill="#fff" stroke="#333" stroke-width="6"/><text x="80" y="100" font-size="40">A区 储罐</text>
      <rect x="800" y="40" width="760" height="380" fill="#fff" stroke="#333" stroke-width="6"/><text x="840" y="100" font-size="40">B区 车间</text>
      <rect x="40" y="480" width="1520" height="380" fill="#fff" stroke="#333" stroke-width="6"/><text x="80" y="540" font-size="40">C区 仓库</text></svg></body>`)
    const png = await p2.screenshot({ type: 'png' })
    await ctx.close()
    await st.api('POST', '/api/devices', { sn: D2, name: '2号测试点', location: 'B区', high_limit: 100 })
    await page.goto(`${st.baseUrl}/admin/dashboard-config`)
    await page.getByTestId('plan-input').setInputFiles({ name: 'plan.png', mimeType: 'image/png', buffer: png })
    await waitFor(async () => (await page.locator('[data-testid="cfg-plan"] img').count()) > 0, { desc: 'plan shown' })
    const plan = page.getByTestId('cfg-plan')
    const box = await plan.boundingBox()
    await page.getByTestId(`cfg-item-${D1}`).dragTo(plan, { targetPosition: { x: box.width * 0.3, y: box.height * 0.4 } })
    await page.getByTestId(`cfg-item-${D2}`).dragTo(plan, { targetPosition: { x: box.width * 0.6, y: box.height * 0.3 } })
    await waitFor(async () => (await page.getByTestId(`pin-${D1}`).count()) > 0, { desc: 'pin placed' })
    // drag the placed pin again to move it to (25 %, 20 %)
    const pin = await page.getByTestId(`pin-${D1}`).boundingBox()
    await page.mouse.move(pin.x + pin.width / 2, pin.y + pin.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.2, { steps: 8 })
    await page.mouse.up()
    await page.getByTestId('cfg-save').click()
    await waitFor(() => {
      const [x, y] = st.sql(`SELECT pos_x || ',' || pos_y FROM devices WHERE sn = '${D1}'`).split(',').map(Number)
      return Math.abs(x - 25) < 1 && Math.abs(y - 20) < 1
    }, { desc: 'pos_x/pos_y stored as percentages (25, 20)' })
    const bg = await st.api('GET', '/api/config/dashboard/bg')
    expect(bg.status === 200, 'plan stored by the server')
  })

  spec('big screen shows the device at its position with a live value', async ({ screen }) => {
    live.set(D2, 20)
    await screen.goto(`${st.baseUrl}/dashboard`)
    const marker = `[data-testid="marker-${D1}"]`
    await waitFor(async () => (await screen.locator(`${marker} [data-testid="marker-value"]`).textContent()) === '210.0', { timeout: 15000, desc: 'live value 210.0' })
    const c = await centrePct(screen, `${marker} .dot`, '[data-testid="plan"]')
    // the dot's centre is the saved point (the label hangs below it)
    expect(Math.abs(c.x - 25) < 1.5 && Math.abs(c.y - 20) < 3, `marker at ${c.x.toFixed(1)}, ${c.y.toFixed(1)}`)
    expect(await screen.locator(marker).getAttribute('data-state') === 'normal', 'green')
    // click → side panel with the last hour's minute trend (subscribe → history frame)
    await screen.locator(`${marker} .dot`).click()
    await waitFor(async () => (await screen.getByTestId('device-panel').count()) > 0, { desc: 'side panel' })
    await waitFor(async () => (await screen.locator('[data-testid="device-panel"] canvas').count()) > 0, { desc: 'trend chart' })
    expect((await screen.getByTestId('device-panel').textContent()).includes('1号测试点'), 'panel names the device')
    await screen.waitForTimeout(800)
  }, { shot: 'screen' })

  spec('open screen follows configuration live: new, moved and deleted device, new plan (issue #19)', async ({ screen, browser }) => {
    const D3 = 'E2E-D3'
    const marker = `[data-testid="marker-${D3}"]`
    const planImg = '[data-testid="plan"] img'
    await screen.evaluate(() => { window.__notReloaded = true })
    const seconds = async (cond, desc) => {
      const t0 = Date.now()
      await waitFor(cond, { timeout: 5000, desc })
      return (Date.now() - t0) / 1000
    }
    // New device, placed: its marker appears.
    expect((await st.api('POST', '/api/devices', { sn: D3, name: '3号测试点' })).status === 201, 'D3 added')
    await st.api('POST', '/api/devices/positions', { positions: [{ sn: D3, pos_x: 70, pos_y: 60 }] })
    const tAdd = await seconds(async () => (await screen.locator(marker).count()) > 0, 'new device shown')
    // Moved: the marker follows.
    await st.api('POST', '/api/devices/positions', { positions: [{ sn: D3, pos_x: 40, pos_y: 75 }] })
    expect(st.sql(`SELECT pos_x || ',' || pos_y FROM devices WHERE sn = '${D3}'`) === '40,75', 'position stored')
    const tMove = await seconds(async () => {
      const c = await centrePct(screen, `${marker} .dot`, '[data-testid="plan"]')
      return Math.abs(c.x - 40) < 1.5 && Math.abs(c.y - 75) < 3
    }, 'marker moved to (40, 75)')
    // A new floor plan (another size): the screen shows it.
    const old = Buffer.from(st.sql("SELECT encode(data, 'base64') FROM api_files WHERE name = 'dashboard_bg'").replace(/\s/g, ''), 'base64')
    const ctx = await browser.newContext({ viewport: { width: 800, height: 500 } })
    const p2 = await ctx.newPage()
    await p2.setContent('<body style="margin:0;background:#eef"><h1>D区 新平面图</h1></body>')
    const png = await p2.screenshot({ type: 'png' })
    await ctx.close()
    const up = async (buf) => fetch(`${st.baseUrl}/api/config/dashboard/bg`, { method: 'POST', headers: { Authorization: `Bearer ${st.token}`, 'Content-Type': 'image/png' }, body: buf })
    expect((await up(png)).status === 200, 'plan uploaded')
    const tPlan = await seconds(async () => (await screen.locator(planImg).evaluate((i) => i.naturalWidth)) === 800, 'new plan (800 px wide) shown')
    // Deleted: the marker goes.
    expect((await st.api('DELETE', `/api/devices/${D3}`)).status === 200, 'D3 deleted')
    expect(st.sql(`SELECT count(*) FROM devices WHERE sn = '${D3}'`) === '0', 'row gone')
    const tDel = await seconds(async () => (await screen.locator(marker).count()) === 0 && (await screen.getByTestId(`chip-${D3}`).count()) === 0, 'deleted device gone')
    expect(await screen.evaluate(() => window.__notReloaded === true), 'the screen was not reloaded')
    console.log(`    live config: added ${tAdd}s, moved ${tMove}s, plan ${tPlan}s, deleted ${tDel}s`)
    // The plan of the specs before, back again.
    expect((await up(old)).status === 200, 'old plan restored')
    await waitFor(async () => (await screen.locator(planImg).evaluate((i) => i.naturalWidth)) === 1600, { timeout: 5000, desc: 'old plan back' })
  })

  spec('over level 1 then level 2: colour, ripple, list entry, sound', async ({ screen }) => {
    await st.api('PUT', `/api/devices/${D1}`, { high_limit: 100, high_limit2: 300 })
    live.set(D1, 60) // 2·60+10 = 130 > 100
    const marker = screen.locator(`[data-testid="marker-${D1}"]`)
    await waitFor(async () => (await marker.getAttribute('data-state')) === 'alarm1', { timeout: 20000, desc: 'level 1 red' })
    const ripple = await screen.locator(`[data-testid="marker-${D1}"] .dot`).evaluate((el) => getComputedStyle(el, '::before').animationName)
    expect(ripple === 'ripple' || ripple.startsWith('ripple'), `ripple animation (${ripple})`)
    await waitFor(async () => (await screen.locator(`[data-sn="${D1}"]`).count()) > 0, { desc: 'alarm list entry' })
    await waitFor(async () => (await screen.getByTestId('sound-indicator').getAttribute('data-state')) === 'playing-1', { desc: 'level 1 sound' })
    await screen.screenshot({ path: `${st.shots}/stack_level1.png` })
    live.set(D1, 200) // 410 > 300
    await waitFor(async () => (await marker.getAttribute('data-state')) === 'alarm2', { timeout: 20000, desc: 'level 2' })
    await waitFor(async () => (await screen.getByTestId('sound-indicator').getAttribute('data-state')) === 'playing-2', { desc: 'level 2 sound' })
    expect(st.sql(`SELECT level FROM alarm_logs WHERE sn = '${D1}' AND alarm_type = 'HIGH' AND cleared_at IS NULL`) === '2', 'alarm_logs level 2')
  }, { shot: 'screen' })

  spec('silence, then a new alarm sounds again', async ({ screen }) => {
    await screen.getByTestId('silence').click()
    await waitFor(async () => (await screen.getByTestId('sound-indicator').getAttribute('data-state')) === 'silenced', { desc: 'silenced' })
    await screen.screenshot({ path: `${st.shots}/stack_silenced.png` })
    // Who silenced what (issue #9): mcs-api's audit row names the screen's user.
    const d1alarm = st.sql(`SELECT id FROM alarm_logs WHERE sn = '${D1}' AND cleared_at IS NULL ORDER BY id DESC LIMIT 1`)
    await waitFor(() => st.sql(`SELECT username || '|' || (after->'ids' @> '[${d1alarm}]') FROM audit_logs WHERE action = 'alarm.silence' ORDER BY id DESC LIMIT 1`) === 'admin|true', { desc: 'silence audit row' })
    live.set(D2, 150) // k=1: 150 > 100
    await waitFor(async () => (await screen.getByTestId('sound-indicator').getAttribute('data-state')) === 'playing-1', { timeout: 20000, desc: 'new alarm sounds' })
  }, { shot: 'screen' })

  spec('acknowledge from the screen', async ({ screen }) => {
    const id = st.sql(`SELECT id FROM alarm_logs WHERE sn = '${D2}' AND cleared_at IS NULL ORDER BY id DESC LIMIT 1`)
    await screen.getByTestId(`ack-${id}`).click()
    await screen.locator('.el-message-box input').fill('现场已确认')
    await screen.locator('.el-message-box .el-button--primary').click()
    await waitFor(() => st.sql(`SELECT ack_by || '|' || ack_note FROM alarm_logs WHERE id = ${id}`) === 'admin|现场已确认', { desc: 'ack stored' })
    await waitFor(async () => (await screen.getByTestId(`ack-${id}`).count()) === 0, { desc: 'ack button gone' })
  }, { shot: 'screen' })

  spec('device stops: grey', async ({ screen }) => {
    live.delete(D2)
    st.status(D2, 'offline')
    const marker = screen.locator(`[data-testid="marker-${D2}"]`)
    await waitFor(async () => ['offline', 'fault'].includes(await marker.getAttribute('data-state')), { timeout: 20000, desc: 'grey/yellow' })
  }, { shot: 'screen' })

  spec('mcs-api killed: stale warning, then recovery', async ({ screen }) => {
    await st.killApi()
    try {
      await waitFor(async () => (await screen.getByTestId('stale-banner').count()) > 0, { timeout: 10000, desc: 'stale banner' })
      await screen.waitForTimeout(6000)
      await screen.screenshot({ path: `${st.shots}/stack_stale.png` })
    } finally {
      await st.startApi() // the later specs need it whatever happened here
    }
    await waitFor(async () => (await screen.getByTestId('stale-banner').count()) === 0, { timeout: 30000, desc: 'recovered' })
    const before = await screen.locator(`[data-testid="marker-${D1}"] [data-testid="marker-value"]`).textContent()
    live.set(D1, 201) // 412: the screen follows again
    await waitFor(async () => (await screen.locator(`[data-testid="marker-${D1}"] [data-testid="marker-value"]`).textContent()) === '412.0', { timeout: 15000, desc: `live again (was ${before})` })
  }, { shot: 'screen' })

  spec('webhook channel test-send reaches a capture server', async ({ page }) => {
    const got = []
    const cap = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => { body += c })
      req.on('end', () => { got.push({ url: req.url, body }); res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"errcode":0,"errmsg":"ok"}') })
    })
    await new Promise((r) => cap.listen(0, '127.0.0.1', r))
    try {
      await page.goto(`${st.baseUrl}/admin/alarm-config`)
      await page.getByTestId('webhook-enabled').click()
      await page.getByTestId('webhook-platform').click()
      await page.locator('.el-select-dropdown__item', { hasText: /自定义|Custom/ }).click()
      await fill(page, 'webhook-url', `http://127.0.0.1:${cap.address().port}/hook`)
      await page.getByTestId('test-webhook').click()
      await waitFor(async () => (await page.getByTestId('test-result-webhook').count()) > 0, { timeout: 30000, desc: 'test result' })
      const text = await page.getByTestId('test-result-webhook').textContent()
      expect(got.length >= 1 && got[0].url === '/hook', `capture server got ${got.length} (${text})`)
      expect(text.includes('成功'), `success shown: ${text}`)
    } finally {
      cap.close()
    }
  })

  spec('export alarms to .xlsx and check its rows', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/alarms`)
    await waitFor(async () => (await page.getByTestId('alarms-table').textContent()).includes(D1), { desc: 'records listed' })
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('alarms-export').click()])
    const file = await dl.path()
    const zip = unzipSync(new Uint8Array(readFileSync(file)))
    const xml = Object.entries(zip).filter(([n]) => n.startsWith('xl/')).map(([, v]) => strFromU8(v)).join('\n')
    const n = Number(st.sql(`SELECT count(*) FROM alarm_logs WHERE sn IN ('${D1}', '${D2}')`))
    expect(xml.includes(D1) && xml.includes(D2), 'both devices in the sheet')
    const rows = (zip['xl/worksheets/sheet1.xml'] ? strFromU8(zip['xl/worksheets/sheet1.xml']).match(/<row /g) ?? [] : []).length
    expect(rows >= n + 1, `sheet rows ${rows} ≥ ${n} alarms + header`)
  })

  spec('users: add a viewer', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/users`)
    await page.getByTestId('user-add').click()
    await fill(page, 'user-name', 'guard2')
    await fill(page, 'user-pass', 'guard2-password')
    await page.getByTestId('user-save').click()
    await waitFor(async () => (await page.getByTestId('users-table').textContent()).includes('guard2'), { desc: 'user listed' })
    expect(st.sql(`SELECT role FROM users WHERE username = 'guard2'`) === 'viewer', 'users row, role viewer')
  })

  spec('data query shows the trend of the last day', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/query`)
    await waitFor(async () => (await page.locator('[data-testid="q-device"]').count()) > 0, { desc: 'query page' })
    await page.getByTestId('q-run').click()
    await waitFor(async () => /[1-9]/.test(await page.getByTestId('q-count').textContent()), { desc: 'points' })
    const n = Number((await page.getByTestId('q-count').textContent()).replace(/\D/g, ''))
    const db = Number(st.sql(`SELECT count(DISTINCT date_trunc('minute', time)) FROM sensor_data WHERE sn = (SELECT min(sn) FROM devices)`))
    expect(n === db, `one point per minute: page ${n}, database ${db}`)
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('q-xlsx').click()])
    const zip = unzipSync(new Uint8Array(readFileSync(await dl.path())))
    const sheet = Object.entries(zip).find(([k]) => /xl\/worksheets\/sheet1\.xml$/.test(k))
    const rows = sheet ? (strFromU8(sheet[1]).match(/<row[ >]/g) ?? []).length : 0
    expect(rows === n + 1, `xlsx rows ${rows} = ${n} points + header`)
  })

  spec('operation log lists the admin changes', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/system`)
    await page.getByRole('tab', { name: /操作日志|Operation log/ }).click()
    await waitFor(async () => (await page.getByTestId('logs-table').textContent()).includes(D1), { desc: 'audit rows for the device' })
  })

  spec('授权信息 shows the license and installs a license file (issue #17)', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/system`)
    await page.getByRole('tab', { name: /授权信息|License/ }).click()
    // mcsd checked online at its start against the stack's mcs-licensed
    await waitFor(async () => (await page.getByTestId('license-state').textContent()).includes('有效'), { desc: 'license valid' })
    expect((await page.getByTestId('license-info').textContent()).includes('演示工厂'), 'customer shown')
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/system/license') && r.request().method() === 'POST'),
      page.getByTestId('license-file').setInputFiles(st.svc.LICENSE_FILE),
    ])
    expect(resp.status() === 200, `install answered ${resp.status()}`)
    await waitFor(async () => (await page.getByTestId('license-state').textContent()).includes('有效'), { desc: 'still valid' })
    expect((await page.getByTestId('license-notice').count()) === 0, 'no blocking notice while valid')
  })

  spec('analyzer lists the archive bucket for a signed-in user', async ({ page }) => {
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('/api/system/archives')),
      (async () => { await page.goto(`${st.baseUrl}/analyzer`); await page.getByTestId('bucket-open').click() })(),
    ])
    expect(resp.status() === 200, `archive list answered ${resp.status()}`)
    await page.waitForTimeout(400)
    await page.keyboard.press('Escape')
    // Signed in as an admin, the plant's zone comes from the alarm settings.
    await waitFor(async () => /来自服务器配置|from the server/.test(await page.getByTestId('analyzer-tz').textContent()), { desc: 'zone from the server' })
    expect(await page.getByTestId('analyzer-tz').getAttribute('data-tz') === 'Asia/Shanghai', 'server zone Asia/Shanghai')
  })

  spec('admin in English', async ({ page }) => {
    await page.goto(`${st.baseUrl}/admin/devices`)
    await page.getByTestId('lang-switch').click()
    await waitFor(async () => (await page.getByTestId('dev-add').textContent()).includes('Add device') && (await page.getByTestId('dev-table').textContent()).includes('Last seen'), { desc: 'English table' })
    await page.getByTestId(`dev-edit-${D1}`).click()
    await waitFor(async () => (await page.getByTestId('calib-preview').textContent()).includes('latest'), { desc: 'English editor' })
    await page.waitForTimeout(500)
  })

  spec('big screen in English', async ({ screen }) => {
    await screen.getByTestId('lang-switch').click()
    await waitFor(async () => (await screen.getByTestId('screen').textContent()).includes('Online'), { desc: 'English' })
    await screen.waitForTimeout(500)
  }, { shot: 'screen' })

  spec('kiosk mode: no controls', async ({ screen }) => {
    await screen.goto(`${st.baseUrl}/dashboard?kiosk=1`)
    await waitFor(async () => (await screen.locator(`[data-testid="marker-${D1}"]`).count()) > 0, { desc: 'screen up' })
    expect(await screen.getByTestId('lang-switch').count() === 0, 'no language button in kiosk mode')
    await screen.waitForTimeout(1500)
  }, { shot: 'screen' })

  spec('viewer sees the big screen only', async ({ browser }) => {
    const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 } })
    const p = await ctx.newPage()
    await login(p, st.baseUrl, 'viewer', st.password)
    await p.waitForURL(/\/dashboard/)
    await p.goto(`${st.baseUrl}/admin/devices`)
    await p.waitForURL(/\/dashboard/)
    expect(await p.getByTestId(`ack-${st.sql(`SELECT id FROM alarm_logs WHERE sn = '${D1}' ORDER BY id DESC LIMIT 1`)}`).count() === 0, 'no ack for a viewer')
    await ctx.close()
  })
}
