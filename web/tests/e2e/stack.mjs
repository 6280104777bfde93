// The real stack for the end-to-end specs: Mosquitto, PostgreSQL 15 and Redis
// from scripts/svc.sh on free loopback ports, the real mcsd and mcs-api
// (build/), an admin made with the `mcs user add` CLI, devices simulated by
// publishing R-MQ-2 readings with Debian's mosquitto_pub.
import { execFileSync, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { waitFor } from './harness.mjs'

export const REPO = resolve(new URL('.', import.meta.url).pathname, '../../..')

function freePort() {
  return new Promise((res) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)) })
  })
}

function parseEnv(text) {
  const out = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (m) out[m[1]] = m[2]
  }
  return out
}

export class Stack {
  constructor() {
    this.bin = process.env.MCS_BUILD_DIR || join(REPO, 'build')
    this.run = join(REPO, '.run', `e2e-web-${process.pid}`)
    this.procs = {}
    this.password = randomBytes(9).toString('hex')
    this.seq = new Map()
  }

  available() {
    return ['mcsd', 'mcs-api', 'mcs'].every((b) => existsSync(join(this.bin, b)))
  }

  async start() {
    mkdirSync(this.run, { recursive: true })
    const env0 = { ...process.env }
    delete env0.MCS_BROKER_AUTH
    execFileSync('bash', [join(REPO, 'scripts/svc.sh'), 'start', this.run], { env: env0, stdio: ['ignore', 'ignore', 'inherit'] })
    const svc = parseEnv(readFileSync(join(this.run, 'env'), 'utf8'))
    this.svc = svc
    this.apiPort = await freePort()
    const conf = {
      DB_HOST: svc.DB_HOST, DB_PORT: svc.DB_PORT, DB_NAME: svc.DB_NAME, DB_USER: svc.DB_USER,
      REDIS_HOST: svc.REDIS_HOST, REDIS_PORT: svc.REDIS_PORT, MQTT_HOST: svc.MQTT_HOST, MQTT_PORT: svc.MQTT_PORT,
      INSTANCE_ID: 'e2e-web', SPOOL_DIR: join(this.run, 'spool'), LOG_LEVEL: 'INFO', VENDOR_SECRET: 'e2e-vendor-secret',
      // the demo license and local license server svc.sh provides (issue #17)
      LICENSE_FILE: svc.LICENSE_FILE, LICENSE_SERVER_URL: svc.LICENSE_SERVER_URL, LICENSE_SERVER_CAFILE: svc.LICENSE_SERVER_CAFILE,
      API_BIND: '127.0.0.1', API_PORT: String(this.apiPort), JWT_SECRET: randomBytes(24).toString('hex'),
      WEB_ROOT: join(REPO, 'web/dist'), MCS_SECRET_KEY: randomBytes(32).toString('hex'),
    }
    this.envFile = join(this.run, 'mcs.env')
    writeFileSync(this.envFile, Object.entries(conf).map(([k, v]) => `${k}=${v}`).join('\n') + '\n')
    this.env = { ...env0, ...conf }
    for (const k of ['ENV_FILE', 'MQTT_CAFILE', 'MQTT_TLS_CAFILE']) delete this.env[k]
    execFileSync(join(this.bin, 'mcsd'), ['--env-file', this.envFile, '--migrate'], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] })
    await this.startProc('mcsd', [])
    execFileSync(join(this.bin, 'mcs'), ['--env-file', this.envFile, 'user', 'add', 'admin', '--role', 'admin'], { env: this.env, input: this.password + '\n', stdio: ['pipe', 'ignore', 'inherit'] })
    execFileSync(join(this.bin, 'mcs'), ['--env-file', this.envFile, 'user', 'add', 'viewer', '--role', 'viewer'], { env: this.env, input: this.password + '\n', stdio: ['pipe', 'ignore', 'inherit'] })
    await this.startApi()
    this.baseUrl = `http://127.0.0.1:${this.apiPort}`
  }

  async startProc(name, args) {
    const log = join(this.run, `${name}.log`)
    const fd = openSync(log, 'a')
    const p = spawn(join(this.bin, name), ['--env-file', this.envFile, ...args], { env: this.env, stdio: ['ignore', fd, fd] })
    this.procs[name] = p
    const from = existsSync(log) ? readFileSync(log, 'utf8').length : 0
    await waitFor(() => readFileSync(log, 'utf8').slice(from).includes('"msg":"ready"') || p.exitCode !== null, { timeout: 20000, desc: `${name} ready` })
    if (p.exitCode !== null) throw new Error(`${name} exited ${p.exitCode}: ${readFileSync(log, 'utf8').slice(-800)}`)
    return p
  }

  startApi() { return this.startProc('mcs-api', []) }

  /** Stops mcs-api the hard way (the stale-feed spec). */
  async killApi() {
    const p = this.procs['mcs-api']
    if (!p || p.exitCode !== null) return
    p.kill('SIGKILL')
    await waitFor(() => p.exitCode !== null || p.signalCode !== null, { desc: 'mcs-api gone' })
  }

  async stop() {
    for (const [name, p] of Object.entries(this.procs)) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM')
        await waitFor(() => p.exitCode !== null || p.signalCode !== null, { timeout: 15000, desc: `${name} stop` }).catch(() => p.kill('SIGKILL'))
      }
    }
    try { execFileSync('bash', [join(REPO, 'scripts/svc.sh'), 'stop', this.run], { stdio: 'ignore' }) } catch { /* best effort */ }
    // Logs are kept with KEEP_RUN=1 (mcsd.log, mcs-api.log in the run directory).
    if (process.env.KEEP_RUN !== '1') rmSync(this.run, { recursive: true, force: true })
    else console.log(`e2e: run directory kept: ${this.run}`)
  }

  sql(query) {
    return execFileSync('psql', ['-h', this.svc.DB_HOST, '-p', this.svc.DB_PORT, '-U', this.svc.DB_USER, '-d', this.svc.DB_NAME, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' }).trim()
  }

  pub(topic, payload, retain = false) {
    const args = ['-h', this.svc.MQTT_HOST, '-p', this.svc.MQTT_PORT, '-q', '1', '-t', topic, '-m', JSON.stringify(payload)]
    if (retain) args.push('-r')
    execFileSync('mosquitto_pub', args, { stdio: ['ignore', 'ignore', 'inherit'] })
  }

  /** One R-MQ-2 reading of a simulated device. */
  reading(sn, { v_raw = 100, temp = 25, bat = 90, rssi = -70, err = 0 } = {}) {
    const seq = ((this.seq.get(sn) ?? 0) + 1) & 0xffff
    this.seq.set(sn, seq)
    this.pub(`mcs/${sn}/up`, { ts: Math.floor(Date.now() / 1000), seq, v_raw, temp, humi: 50, bat, rssi, net: '4G', ver: '1.0.2', err })
  }

  status(sn, status) {
    this.pub(`mcs/${sn}/status`, { status, ts: Math.floor(Date.now() / 1000) }, true)
  }

  /** REST as admin (setup and ground truth beside the browser). */
  async api(method, path, body) {
    if (!this.token) {
      const r = await fetch(`${this.baseUrl}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: this.password }) })
      this.token = (await r.json()).access_token
    }
    const r = await fetch(`${this.baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await r.text()
    let json = null
    try { json = JSON.parse(text) } catch { /* binary */ }
    return { status: r.status, json, text }
  }
}
