// The server's contract: types generated from docs/api/openapi.yaml by
// scripts/gen-api.mjs (openapi-typescript) at build time, never by hand.
import type { components } from './generated/schema'

export type Schemas = components['schemas']
