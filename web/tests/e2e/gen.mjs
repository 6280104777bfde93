// Archive files for the analyzer specs with figures known in advance.
import { gzipSync } from 'node:zlib'

const T0 = Date.UTC(2025, 11, 17) / 1000

function iso(t) {
  return new Date(t * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00')
}

/**
 * `devices` devices for `hours` hours from `startHour` at the 10 s cadence;
 * device 1 drops every 50th packet; device 0 reads 800 ppm for 2 minutes at
 * startHour + 0:30. Returns the text and the expected figures.
 */
export function archiveText({ devices = 3, hours = 1, startHour = 0, bad = [] } = {}) {
  const lines = ['time,sn,v_raw,ppm,temp,humi,bat,rssi,seq']
  let rows = 0, lost = 0
  const t0 = T0 + startHour * 3600
  for (let t = t0; t < t0 + hours * 3600; t += 10) {
    const k = (t - T0) / 10
    for (let i = 0; i < devices; i++) {
      if (i === 1 && k % 50 === 49) { lost++; continue }
      const sn = `E2E-${String(i).padStart(3, '0')}`
      const rel = t - t0
      const ppm = i === 0 && rel >= 1800 && rel < 1920 ? 800 : 20 + i
      lines.push(`${iso(t)},${sn},${(ppm + 100).toFixed(1)},${ppm.toFixed(1)},25.0,50.0,${90 - i},-${70 + i},${k & 0xffff}`)
      rows++
    }
  }
  for (const b of bad) lines.push(b)
  return { text: lines.join('\n') + '\n', rows, lost }
}

export const gz = (text) => gzipSync(Buffer.from(text))

/**
 * One complete plant day of Asia/Shanghai (2025-12-17 00:00 to 24:00 at
 * +08:00), timestamps written with their +08 offset as the plant's
 * archive has them: `devices` devices, every 10 s slot filled.
 */
export function shanghaiDayText({ devices = 2 } = {}) {
  const lines = ['time,sn,v_raw,ppm,temp,humi,bat,rssi,seq']
  const start = Date.UTC(2025, 11, 16, 16) / 1000
  let rows = 0
  for (let k = 0; k < 8640; k++) {
    const local = iso(start + k * 10 + 8 * 3600).replace('+00', '+08')
    for (let i = 0; i < devices; i++) {
      lines.push(`${local},SH-${String(i).padStart(3, '0')},120.0,20.0,25.0,50.0,${90 - i},-70,${k}`)
      rows++
    }
  }
  return { text: lines.join('\n') + '\n', rows }
}
