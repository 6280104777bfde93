// Precompresses the built app's hashed assets (dist/assets) for mcs-api,
// which serves file.br or file.gz in place of file when the request's
// Accept-Encoding allows (src/api/http.c serve_static). Run by
// scripts/web.sh build after vite build; Node's own zlib, no npm package.
//   node scripts/precompress.mjs [dist]   (default: web/dist)
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

const dist = process.argv[2] || join(dirname(fileURLToPath(import.meta.url)), '../dist')
const dir = join(dist, 'assets')
// Text formats only: images and fonts are compressed already.
const TEXT = new Set(['.js', '.mjs', '.css', '.html', '.svg', '.json', '.map', '.txt', '.wasm'])
const MIN = 1024 // smaller files gain less than the header costs

let files = 0, raw = 0, gz = 0, br = 0
for (const name of readdirSync(dir)) {
  const file = join(dir, name)
  if (name.endsWith('.gz') || name.endsWith('.br')) {
    // A sibling left from an earlier build whose original is gone.
    if (!statSync(file.slice(0, -3), { throwIfNoEntry: false })) unlinkSync(file)
    continue
  }
  if (!TEXT.has(extname(name)) || !statSync(file).isFile()) continue
  const data = readFileSync(file)
  if (data.length < MIN) continue
  files++
  raw += data.length
  const g = zlib.gzipSync(data, { level: 9 })
  // Only a smaller file is worth a sibling; else the original is served.
  if (g.length < data.length) { writeFileSync(file + '.gz', g); gz += g.length } else gz += data.length
  if (zlib.brotliCompressSync) {
    const b = zlib.brotliCompressSync(data, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    })
    if (b.length < data.length) { writeFileSync(file + '.br', b); br += b.length } else br += data.length
  }
}
const kb = (n) => (n / 1024).toFixed(0)
console.log(`precompress: ${files} assets, ${kb(raw)} KB → gzip ${kb(gz)} KB${br ? `, brotli ${kb(br)} KB` : ''}`)
