// Admin pages against the real stack (issue #19): where a sign-in lands,
// the server's reason in a validation error, each alarm channel's delivery
// state, and changing one's own password. Ground truth beside the browser:
// rows in PostgreSQL, requests a capture server received, the API itself.
import { createServer } from 'node:http'
import { spec, expect, waitFor } from './harness.mjs'
import { fill, login } from './stack.spec.mjs'

/** A context of its own (signed out), in a zone other than the plant's. */
async function freshPage(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 }, timezoneId: 'America/New_York', locale: 'zh-CN' })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.log('page error:', e.message))
  return { ctx, page }
}

const path = (page) => new URL(page.url()).pathname

export function adminSpecs(st) {
  spec('login lands by role: admin on the overview, viewer on the wall screen', async ({ browser }) => {
    const { ctx, page } = await freshPage(browser)
    try {
      // The address a person types: the root, signed out.
      await page.goto(`${st.baseUrl}/`)
      await page.waitForURL(/\/login/)
      await page.getByTestId('login-user').fill('admin')
      await page.getByTestId('login-pass').fill(st.password)
      await page.getByTestId('login-submit').click()
      await waitFor(async () => path(page) === '/admin/overview', { desc: `admin on /admin/overview (at ${page.url()})` })
      await page.getByTestId('logout').click()
      await page.waitForURL(/\/login/)
      await page.goto(`${st.baseUrl}/`)
      await page.waitForURL(/\/login/)
      await page.getByTestId('login-user').fill('viewer')
      await page.getByTestId('login-pass').fill(st.password)
      await page.getByTestId('login-submit').click()
      await waitFor(async () => path(page) === '/dashboard', { desc: `viewer on /dashboard (at ${page.url()})` })
    } finally {
      await ctx.close()
    }
  })

  spec('a validation error shows the server reason, not only 请求参数错误', async ({ page }) => {
    await login(page, st.baseUrl, 'admin', st.password)
    await page.waitForURL(/\/admin\/overview/)
    const bad = 'bad sn!'
    const truth = await st.api('POST', '/api/devices', { sn: bad, name: 'x', location: 'y', high_limit: 100 })
    expect(truth.status === 400 && truth.json?.detail, `the API refuses ${bad} with a reason: ${truth.status} ${truth.text}`)
    await page.goto(`${st.baseUrl}/admin/devices`)
    await page.getByTestId('dev-add').click()
    await fill(page, 'add-sn', bad)
    await fill(page, 'add-name', 'x')
    await page.getByTestId('add-save').click()
    const msg = page.locator('.el-message--error')
    await waitFor(async () => (await msg.count()) > 0, { desc: 'error message' })
    const text = (await msg.first().textContent()).trim()
    expect(text.includes(truth.json.detail), `message "${text}" carries the server reason "${truth.json.detail}"`)
    expect(st.sql(`SELECT count(*) FROM devices WHERE sn = '${bad}'`) === '0', 'no device row written')
  })

  spec('alarm channels: delivery state per channel in the plant time', async ({ browser }) => {
    const got = []
    const cap = createServer((req, res) => {
      req.resume()
      req.on('end', () => { got.push(Date.now()); res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"errcode":0,"errmsg":"ok"}') })
    })
    await new Promise((r) => cap.listen(0, '127.0.0.1', r))
    const tz = (await st.api('GET', '/api/config/alarm/channels')).json?.tz
    // A page of its own in New York: the table must show the plant's time, not the browser's.
    const { ctx, page: p } = await freshPage(browser)
    try {
      expect(tz, 'plant zone from the API')
      await login(p, st.baseUrl, 'admin', st.password)
      await p.waitForURL(/\/admin\/overview/)
      await p.goto(`${st.baseUrl}/admin/alarm-config`)
      await waitFor(async () => (await p.getByTestId('delivery-webhook').count()) > 0, { desc: 'delivery table' })
      const sent0 = Number(await p.getByTestId('delivery-sent-webhook').textContent())
      // An earlier spec may have sent on this channel: wait for this send's outcome.
      const okSql = `SELECT to_char(last_ok_at AT TIME ZONE '${tz}', 'YYYY-MM-DD HH24:MI:SS.US') FROM alarm_channel_state WHERE channel = 'webhook'`
      const failSql = `SELECT last_fail_at FROM alarm_channel_state WHERE channel = 'webhook'`
      const ok0 = st.sql(okSql)
      if (!(await p.getByTestId('webhook-enabled').locator('input').isChecked())) await p.getByTestId('webhook-enabled').click()
      await p.getByTestId('webhook-platform').click()
      await p.locator('.el-select-dropdown__item', { hasText: /自定义|Custom/ }).click()
      await fill(p, 'webhook-url', `http://127.0.0.1:${cap.address().port}/hook`)
      await p.getByTestId('test-webhook').click()
      await waitFor(async () => got.length >= 1, { timeout: 30000, desc: 'capture server reached' })
      await waitFor(() => { const v = st.sql(okSql); return v && v !== ok0 ? v : null }, { timeout: 15000, desc: 'alarm_channel_state row of this send' })
      // Alarms of earlier specs may still be sent on this channel and move
      // last_ok_at again: the cell must catch up with the row as it is now.
      const okLocal = await waitFor(async () => {
        const row = (st.sql(okSql) || '').slice(0, 19)
        return row && (await p.getByTestId('delivery-ok-webhook').textContent()).trim() === row ? row : null
      }, { timeout: 20000, desc: `last success (${tz}) shown as in alarm_channel_state` })
      // Alarms of earlier specs may still be sent on this channel: the cell catches up with the row.
      const sameAsRow = (cell, col) => waitFor(async () => {
        const shown = Number(await p.getByTestId(cell).textContent())
        return shown === Number(st.sql(`SELECT ${col} FROM alarm_channel_state WHERE channel = 'webhook'`)) ? String(shown) : null
      }, { timeout: 15000, desc: `${cell} equal to alarm_channel_state.${col}` }).then(Number)
      const sent = await sameAsRow('delivery-sent-webhook', 'sent_day')
      expect(sent >= sent0 + 1, `sent today ${sent}, at least one more than ${sent0}`)
      const capLocal = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, dateStyle: 'short', timeStyle: 'medium' }).format(new Date(got[0]))
      // Within a minute of when the capture server got it (a later send of an
      // earlier spec's alarm may have moved it on); a zone error is hours.
      expect(Math.abs(Date.parse(capLocal.replace(' ', 'T')) - Date.parse(okLocal.replace(' ', 'T'))) <= 60000,
        `shown ${okLocal} is the ${tz} time the capture server got it (${capLocal})`)
      expect((await p.getByTestId('delivery-tz').textContent()).includes(tz), 'zone named')

      // A failure: the robot's port is closed now; the reason is the row's.
      const port = cap.address().port
      const fail0 = st.sql(failSql)
      cap.closeAllConnections()
      await new Promise((r) => cap.close(r))
      await fill(p, 'webhook-url', `http://127.0.0.1:${port}/hook`)
      await p.getByTestId('test-webhook').click()
      await waitFor(() => { const v = st.sql(failSql); return v && v !== fail0 }, { timeout: 30000, desc: 'failure of this send recorded' })
      const reasonSql = `SELECT last_fail_detail FROM alarm_channel_state WHERE channel = 'webhook'`
      await waitFor(async () => (await p.getByTestId('delivery-reason-webhook').textContent()).trim() === st.sql(reasonSql),
        { timeout: 15000, desc: `reason "${st.sql(reasonSql)}" shown` })
      expect(st.sql(reasonSql).length > 0, 'a reason recorded')
      const failed = await sameAsRow('delivery-failed-webhook', 'failed_day')
      expect(failed >= 1, `failed today ${failed}`)
    } finally {
      cap.close()
      await ctx.close()
    }
  })

  spec('change one\'s own password from the admin layout', async ({ browser }) => {
    const user = 'e2e-pw'
    const pass0 = 'Anfang-2026-pw'
    const pass1 = 'Zweites-2026-pw'
    const add = await st.api('POST', '/api/users', { username: user, password: pass0, role: 'admin' })
    expect(add.status === 200 || add.status === 201, `user added: ${add.status} ${add.text}`)
    const hash0 = st.sql(`SELECT password_hash FROM users WHERE username = '${user}'`)
    const { ctx, page } = await freshPage(browser)
    try {
      await login(page, st.baseUrl, user, pass0)
      await page.waitForURL(/\/admin\/overview/)
      const token0 = await page.evaluate(() => localStorage.getItem('mcs.token'))
      await page.getByTestId('pw-open').click()
      // A wrong old password: the reason, and the session goes on.
      await fill(page, 'pw-old', 'not-the-password')
      await fill(page, 'pw-new', pass1)
      await fill(page, 'pw-confirm', pass1)
      await page.getByTestId('pw-save').click()
      await waitFor(async () => (await page.getByTestId('pw-error').count()) > 0, { desc: 'wrong old password shown' })
      expect(path(page) === '/admin/overview', `still signed in after a wrong old password (at ${page.url()})`)
      // A common password: the server's reason (Chinese first) is shown.
      await fill(page, 'pw-old', pass0)
      await fill(page, 'pw-new', 'password123')
      await fill(page, 'pw-confirm', 'password123')
      await page.getByTestId('pw-save').click()
      await waitFor(async () => /常见|common/.test(await page.getByTestId('pw-error').textContent()), { timeout: 15000, desc: 'common-password reason shown' })
      expect(st.sql(`SELECT password_hash FROM users WHERE username = '${user}'`) === hash0, 'nothing changed yet')
      await fill(page, 'pw-new', pass1)
      await fill(page, 'pw-confirm', pass1)
      await page.getByTestId('pw-save').click()
      await waitFor(async () => st.sql(`SELECT password_hash FROM users WHERE username = '${user}'`) !== hash0, { timeout: 15000, desc: 'hash changed in users' })
      const token1 = await waitFor(async () => {
        const tk = await page.evaluate(() => localStorage.getItem('mcs.token'))
        return tk && tk !== token0 ? tk : null
      }, { desc: 'new token stored' })
      // The old token has ended; the stored one works, and the page stays signed in.
      const who = async (tk) => (await fetch(`${st.baseUrl}/api/devices?page=1&size=1`, { headers: { Authorization: `Bearer ${tk}` } })).status
      expect(await who(token0) === 401 && await who(token1) === 200, 'old token refused, new token accepted')
      await page.goto(`${st.baseUrl}/admin/devices`)
      await waitFor(async () => (await page.getByTestId('dev-table').count()) > 0, { desc: 'devices page' })
      expect(path(page) === '/admin/devices', `still signed in (at ${page.url()})`)
      const loginAs = async (pw) => (await fetch(`${st.baseUrl}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: user, password: pw }) })).status
      expect(await loginAs(pass1) === 200 && await loginAs(pass0) === 401, 'new password logs in, old one does not')
    } finally {
      await ctx.close()
    }
  })
}
