// Serves web/dist on a free loopback port with the SPA fallback, for the
// specs that need no server (the analyzer is pure client side).
import { createServer } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.woff2': 'font/woff2', '.json': 'application/json' }

export async function serveDist(dir) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x')
    let p = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, '')
    let file = join(dir, p)
    try {
      if (!(await stat(file)).isFile()) throw new Error('dir')
    } catch {
      if (p.startsWith('/api') || p.startsWith('/ws')) { res.writeHead(503); res.end('{"code":0,"message":"no api"}'); return }
      file = join(dir, 'index.html')
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' })
    res.end(await readFile(file))
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) }
}
