// Lua scripts are not TypeScript: copy them next to the compiled registry code.
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const from = 'src/registry/redis/lua';
const to = 'dist/registry/redis/lua';
if (existsSync(from)) {
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) {
    if (file.endsWith('.lua')) cpSync(join(from, file), join(to, file));
  }
}
