import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The import direction of ARCHITECTURE.md, checked against src/: the layers table there is the
 * rule, so it cannot drift from the code without this failing.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

interface Layer {
  /** Folder below src/ ('registry/redis'), or '' for the top files. */
  folder: string;
  /** Position in the table, bottom layer first. */
  rank: number;
  /** Folders the row lists under "May import"; undefined for the top, which may import anything. */
  mayImport?: Set<string>;
  topFiles?: Set<string>;
}

function cellsOf(row: string): string[] {
  // Cells are split on pipes that are not escaped (the Owns column writes `token\|instance`).
  return row
    .split(/(?<!\\)\|/)
    .slice(1, -1)
    .map((cell) => cell.trim());
}

function layersFromArchitecture(): Layer[] {
  const text = readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8');
  const section = text.slice(text.indexOf('## Layers are folders'));
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('| `src/'))
    .map(cellsOf);
  return rows.map(([folderCell = '', , importsCell = ''], rank) => {
    const paths = [...folderCell.matchAll(/`src\/([^`]*)`/g)].map((m) => m[1] as string);
    if (paths.every((path) => path.endsWith('.ts'))) return { folder: '', rank, topFiles: new Set(paths) };
    const mayImport = new Set(
      importsCell
        .replace(/\([^)]*\)/g, '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '' && name !== 'nothing'),
    );
    return { folder: (paths[0] as string).replace(/\/$/, ''), rank, mayImport };
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The layer a src/-relative path belongs to: the deepest folder row that contains it. */
function layerOf(layers: Layer[], path: string): Layer | undefined {
  const top = layers.find((layer) => layer.topFiles?.has(path));
  if (top) return top;
  return layers
    .filter((layer) => layer.folder !== '' && path.startsWith(`${layer.folder}/`))
    .sort((a, b) => b.folder.length - a.folder.length)[0];
}

function relativeImports(source: string): string[] {
  return [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)].map(
    (m) => m[1] as string,
  );
}

describe('layers (ARCHITECTURE.md)', () => {
  const layers = layersFromArchitecture();

  it('the table names every folder of src/ and the top files (none is left unplaced)', () => {
    const unplaced = sourceFiles(SRC)
      .map((file) => relative(SRC, file).split('\\').join('/'))
      .filter((path) => layerOf(layers, path) === undefined);
    expect(unplaced).toEqual([]);
  });

  it('every import of src/ points to a folder its row allows, and never up', () => {
    const byName = new Map(layers.filter((l) => l.folder !== '').map((l) => [l.folder, l]));
    const rowsListed = [...byName.values()].flatMap((layer) =>
      [...(layer.mayImport ?? [])]
        .filter((name) => !byName.has(name))
        .map((name) => `${layer.folder}: ${name}`),
    );
    // A name in "May import" that is not a row is a typo in the table.
    expect(rowsListed).toEqual([]);
    const violations: string[] = [];
    const foldersSeen = new Set<string>();
    for (const file of sourceFiles(SRC)) {
      const from = relative(SRC, file).split('\\').join('/');
      const own = layerOf(layers, from) as Layer;
      for (const specifier of relativeImports(readFileSync(file, 'utf8'))) {
        const to = posix.normalize(posix.join(posix.dirname(from), specifier)).replace(/\.js$/, '.ts');
        const target = layerOf(layers, to);
        foldersSeen.add(`${own.folder} -> ${target?.folder}`);
        if (target === undefined) {
          violations.push(`${from} -> ${to}: not in any layer`);
          continue;
        }
        if (own.mayImport === undefined || target === own) continue;
        // A folder may use its own subfolders (registry/ uses registry/redis/).
        if (target.folder.startsWith(`${own.folder}/`)) continue;
        // Allowing a folder allows its subfolders (cluster/ may use registry/redis/ through "registry").
        const allowed = [...own.mayImport].some(
          (name) => target.folder === name || target.folder.startsWith(`${name}/`),
        );
        if (!allowed) violations.push(`${from} -> ${to}: ${own.folder} may not import ${target.folder}`);
        else if (target.rank > own.rank)
          violations.push(`${from} -> ${to}: ${target.folder} is above ${own.folder}`);
      }
    }
    expect(violations).toEqual([]);
    // The imports were read at all: a broken pattern would find none and pass.
    expect(foldersSeen).toContain('relay -> registry');
    expect(foldersSeen).toContain('cluster -> registry/redis');
  });
});
