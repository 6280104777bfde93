// Generates src/api/generated/schema.d.ts from ../docs/api/openapi.yaml
// (the server's contract, written by mcs-api) with openapi-typescript, so
// the app's request and response types cannot drift from the server. The
// generated file is never committed. While the spec is not in the tree yet
// the file declares empty maps and the hand-written domain types in
// src/api/*/types.ts (manual §10.2 shapes) are what the code uses.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const spec = resolve(here, '../../docs/api/openapi.yaml')
const out = resolve(here, '../src/api/generated/schema.d.ts')
mkdirSync(dirname(out), { recursive: true })

if (!existsSync(spec)) {
  writeFileSync(out, '// generated: docs/api/openapi.yaml not present\nexport interface paths {}\nexport interface components { schemas: Record<string, unknown> }\n')
  console.log('gen-api: no docs/api/openapi.yaml, wrote empty schema')
} else {
  const { default: openapiTS, astToString } = await import('openapi-typescript')
  const ast = await openapiTS(pathToFileURL(spec))
  writeFileSync(out, '// generated from docs/api/openapi.yaml by scripts/gen-api.mjs\n' + astToString(ast))
  console.log('gen-api: wrote', out)
}
