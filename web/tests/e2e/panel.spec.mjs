// The big screen's side panel against the real stack (docs/NOTES.md): a
// device whose live value is far above its minute history. The checks read
// the rendered ECharts instance (the y-axis extent of its model, the level
// labels' boxes in its scene), not pixels: the axis must reach the live
// value and the alarm lines, the labels must lie inside the canvas.
import { spec, expect, waitFor } from './harness.mjs'

const D3 = 'E2E-D3'
const HIGH = 100
const HIGH2 = 300
const BASE = 20
const LIVE = 500

/** What the panel's chart shows, read from its ECharts instance (useChart.ts). */
function readChart(el) {
  const c = el.__mcsChart
  if (!c || c.isDisposed()) return null
  const opt = c.getOption()
  const s0 = opt.series?.[0]
  if (!s0) return null
  const [lo, hi] = c.getModel().getComponent('yAxis', 0).axis.scale.getExtent()
  const names = (s0.markLine?.data ?? []).map((d) => d.name)
  const boxes = c.getZr().storage.getDisplayList(true)
    .filter((e) => !e.invisible && !e.ignore && e.style && names.includes(e.style.text))
    .map((e) => {
      const r = e.getBoundingRect().clone()
      if (e.transform) r.applyTransform(e.transform)
      return { text: e.style.text, x: r.x, y: r.y, w: r.width, h: r.height }
    })
  return { lo, hi, width: c.getWidth(), height: c.getHeight(), data: s0.data, names, boxes }
}

export function panelSpecs(st) {
  spec('side panel trend: axis reaches the live value and the level lines, labels inside', async ({ screen }) => {
    await st.api('POST', '/api/devices', { sn: D3, name: '3号测试点', location: 'C区', high_limit: HIGH, high_limit2: HIGH2 })
    // Half an hour of minute history at BASE ppm (a row per minute; one that
    // would fall outside the day partitions is left out).
    st.sql(`DO $$ BEGIN FOR i IN 2..31 LOOP BEGIN
      INSERT INTO sensor_data (time, sn, v_raw, ppm, temp, humi, bat, rssi, seq)
      VALUES (now() - make_interval(mins => i), '${D3}', ${BASE}, ${BASE}, 25, 50, 90, -70, i);
      EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END $$`)
    let v = BASE
    const timer = setInterval(() => st.reading(D3, { v_raw: v }), 1000)
    try {
      await screen.goto(`${st.baseUrl}/dashboard`)
      const chip = screen.getByTestId(`chip-${D3}`)
      await waitFor(async () => (await chip.textContent()).includes(`${BASE}.0`), { timeout: 20000, desc: `live ${BASE}.0 on the chip` })
      await chip.click()
      const chart = screen.locator('[data-testid="device-panel"] .trend-chart')
      // The history frame has come: minute points beside the live one (30 of
      // them, fewer only when a day partition boundary fell in the last half hour).
      await waitFor(async () => (await chart.count()) > 0 && ((await chart.evaluate(readChart))?.data.length ?? 0) >= 2, { timeout: 15000, desc: 'minute history in the trend' })

      v = LIVE // far above every minute point; the history is fetched again only every minute
      await waitFor(async () => (await screen.getByTestId('device-panel').textContent()).includes(`${LIVE}.0`), { timeout: 15000, desc: `panel shows ${LIVE}.0` })
      let r = null
      await waitFor(async () => {
        r = await chart.evaluate(readChart)
        return r && r.data[r.data.length - 1][1] === LIVE
      }, { timeout: 5000, desc: 'live reading as the newest trend point' }).catch(() => {})
      expect(r, 'chart instance')
      const minute = r.data.slice(0, -1).map((d) => d[1]).filter((x) => typeof x === 'number')
      expect(minute.length >= 1 && Math.max(...minute) < LIVE / 2, `the scenario: minute points (max ${Math.max(...minute)}) far below the live ${LIVE}`)
      expect(r.hi >= LIVE, `y-axis max ${r.hi} covers the live ${LIVE}`)
      expect(r.hi >= HIGH2 && r.lo <= HIGH && r.lo <= BASE, `y-axis ${r.lo}..${r.hi} covers the level lines ${HIGH}/${HIGH2} and the history ${BASE}`)
      expect(r.data[r.data.length - 1][1] === LIVE, `newest trend point ${JSON.stringify(r.data[r.data.length - 1])} is the live reading`)
      expect(r.names.length === 2 && r.boxes.length === 2, `two level-line labels drawn (${JSON.stringify(r.names)}, ${r.boxes.length} found)`)
      for (const b of r.boxes)
        expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= r.width && b.y + b.h <= r.height,
          `label ${b.text} at ${b.x.toFixed(1)},${b.y.toFixed(1)} ${b.w.toFixed(1)}×${b.h.toFixed(1)} inside the ${r.width}×${r.height} canvas`)
    } finally {
      clearInterval(timer)
    }
  }, { shot: 'screen' })
}
