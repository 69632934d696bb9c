import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without type declarations
import { renderReadme, schemaLeaves, valueRows, valuesKeys } from '../../scripts/chart-readme.mjs';
import { CHART_DIR } from './support/kube-tools.js';

interface Row {
  path: string;
  value: string;
  description: string;
}

const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
const values = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as object;

describe('chart README', () => {
  it('lists exactly what values.yaml and the schema say (run node scripts/chart-readme.mjs when this fails)', () => {
    expect(readme).toBe(renderReadme(readme, values, schema));
  });

  it('has a row with a description for every value of the schema', () => {
    const rows = valueRows(values, schema) as Row[];
    expect(rows.map((row) => row.path)).toEqual(schemaLeaves(schema));
    expect(rows.filter((row) => row.description === '').map((row) => row.path)).toEqual([]);
    for (const row of rows) expect(readme).toContain(`| \`${row.path}\` |`);
    // Only Helm's own `global` has no default in values.yaml.
    expect(rows.filter((row) => row.value === '').map((row) => row.path)).toEqual(['global']);
  });

  it('every key of values.yaml is a value of the schema or inside one', () => {
    const leaves = schemaLeaves(schema) as string[];
    const keys = [...(valuesKeys(values) as Map<string, unknown>).keys()];
    const covered = (path: string): boolean =>
      leaves.some((leaf) => path === leaf || path.startsWith(`${leaf}.`) || leaf.startsWith(`${path}.`));
    expect(keys.filter((key) => !covered(key))).toEqual([]);
  });
});
