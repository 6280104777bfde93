// Analyzer specs: a generated csv.gz and a two-member one (made by
// concatenating gzip streams, which DecompressionStream would reject).
import { spec, expect, waitFor } from './harness.mjs'
import { archiveText, gz, shanghaiDayText } from './gen.mjs'

async function statText(page, id) {
  return (await page.getByTestId(id).textContent()).replace(/[,\s]/g, '')
}

async function loadFiles(page, baseUrl, files) {
  await page.goto(`${baseUrl}/analyzer`)
  await page.getByTestId('analyzer-input').setInputFiles(files)
  await waitFor(async () => (await page.getByTestId('stat-devices').count()) > 0, { timeout: 60000, desc: 'analyzer result' })
}

spec('analyzer loads a generated day file and shows its figures', async ({ page, baseUrl }) => {
  const a = archiveText({ devices: 3, hours: 2, bad: ['garbage line', '2025-12-17 01:00:00+00,E2E-000,1,notanumber,1,1,1,1,1'] })
  await page.setViewportSize({ width: 1600, height: 1000 })
  await loadFiles(page, baseUrl, [{ name: 'sensor_data_20251217.csv.gz', mimeType: 'application/gzip', buffer: gz(a.text) }])
  expect(await statText(page, 'stat-rows') === String(a.rows), `rows ${await statText(page, 'stat-rows')} != ${a.rows}`)
  expect(await statText(page, 'stat-bad') === '2', 'bad lines')
  expect(await statText(page, 'stat-devices') === '3', 'devices')
  // Health: E2E-001 lost every 50th packet.
  await page.getByRole('tab', { name: /健康|health/i }).click()
  const row = page.getByTestId('health-table').locator('tr', { hasText: 'E2E-001' }).first()
  await waitFor(async () => (await row.count()) > 0, { desc: 'health row' })
  const cells = await row.locator('td').allTextContents()
  const expectLoss = (100 * a.lost / (a.rows / 3 + a.lost * 2 / 3)).toFixed(2)
  expect(cells.some((c) => c.trim() === `${(100 * (2 * 360 - a.lost) / 8640).toFixed(1)}%`), `completeness cell in ${cells}`)
  expect(cells.some((c) => c.trim() === String(a.lost)), `lost ${a.lost} in ${cells}`)
  void expectLoss
  await page.getByRole('tab', { name: /错误行|Bad lines/ }).click()
  const bad = await page.getByTestId('bad-table').textContent()
  expect(bad.includes('garbage line') && bad.includes('数值无效'), 'bad line shown with its reason')
  await page.getByRole('tab', { name: /报警分布|Alarm distribution/ }).click()
  await page.waitForTimeout(500)
})

spec('analyzer reads a two-member gzip archive', async ({ page, baseUrl }) => {
  const a = archiveText({ devices: 2, hours: 1, startHour: 0 })
  const b = archiveText({ devices: 2, hours: 1, startHour: 1 })
  const two = Buffer.concat([gz(a.text), gz(b.text)])
  await loadFiles(page, baseUrl, [{ name: 'sensor_data_20251217.csv.gz', mimeType: 'application/gzip', buffer: two }])
  expect(await statText(page, 'stat-rows') === String(a.rows + b.rows), 'rows of both members')
  expect(await statText(page, 'stat-members') === '2', 'two members')
  expect(await page.getByTestId('file-error').count() === 0, 'no file error')
  await page.waitForTimeout(400)
})

// A complete Asia/Shanghai day in a browser running in UTC (run.mjs):
// every device 100 %, one day, the zone named on the page.
async function shanghaiDay(page, baseUrl, zoneText) {
  const a = shanghaiDayText({ devices: 2 })
  await loadFiles(page, baseUrl, [{ name: 'sensor_data_20251217.csv.gz', mimeType: 'application/gzip', buffer: gz(a.text) }])
  expect(await statText(page, 'stat-rows') === String(a.rows), 'rows of the day')
  const tz = await page.getByTestId('analyzer-tz').textContent()
  expect(tz.includes(zoneText) && tz.includes('Asia/Shanghai') && tz.includes('UTC+08:00'), `zone shown: ${tz}`)
  await page.getByRole('tab', { name: /健康|health/i }).click()
  for (const sn of ['SH-000', 'SH-001']) {
    const row = page.getByTestId('health-table').locator('tr', { hasText: sn }).first()
    await waitFor(async () => (await row.count()) > 0, { desc: `health row ${sn}` })
    const cells = await row.locator('td').allTextContents()
    expect(cells.some((c) => c.trim() === '100.0%'), `${sn} completeness 100.0 % in ${cells}`)
    expect(await row.locator('.warn').count() === 0, `${sn} not flagged`)
  }
  const range = await page.locator('.stat.wide b').textContent()
  expect(range.includes('2025-12-17 00:00:00') && range.includes('2025-12-17 23:59:50'), `range in plant time: ${range}`)
}

spec('analyzer: a complete +08:00 day is 100 % (Chinese)', async ({ page, baseUrl }) => {
  await shanghaiDay(page, baseUrl, '时区')
})

spec('analyzer in English', async ({ page }) => {
  await page.getByTestId('lang-switch').click()
  await waitFor(async () => (await page.locator('h2').textContent()).includes('Archive analyzer'), { desc: 'English title' })
  await page.getByRole('tab', { name: 'Sensor health report' }).click()
  await page.waitForTimeout(300)
})

spec('analyzer: a complete +08:00 day is 100 % (English)', async ({ page, baseUrl }) => {
  await shanghaiDay(page, baseUrl, 'Time zone')
})
