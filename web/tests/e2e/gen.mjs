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
