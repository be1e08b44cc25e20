// The descriptor set of proto/ (buf build), which server reflection serves:
// read from beside dist/ where `npm run build` writes it, or, in the one-file
// control plane, inlined by scripts/bundle.mjs in place of this module.
import { readFileSync } from 'node:fs';

export function apiDescriptors(): Buffer {
  return readFileSync(new URL('../grid.binpb', import.meta.url));
}
