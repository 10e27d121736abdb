/**
 * The layer rule as a test: every relative import among the TypeScript sources points down the layer list, no two files import each other
 * (directly or round a loop), and every source file sits in a folder that has a place in the list. The README's layout section documents
 * the same list; a new folder is placed here first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

/**
 * Top to bottom; a file may import its own layer or any layer below it. A member ending in '/' is a folder (with everything under it),
 * otherwise one file; the most specific member wins, so the package entries sit above their own folders: nothing in src imports them.
 * test/ sits above bench/ so that bench, a program of its own, never reaches into the tests (the fixtures module lives on bench's side).
 */
const LAYERS: readonly (readonly string[])[] = [
  ['test/'],
  ['bench/'],
  ['src/index.ts'],
  ['src/server/index.ts'],
  ['src/cli/', 'src/server/', 'src/eval/'],
  ['src/flows/'],
  ['src/executors/'],
  ['src/search/', 'src/encoder/', 'src/download/'],
  ['src/store/', 'src/model/', 'src/image/', 'src/dataset/'],
  ['src/kernels/'],
  ['src/util/', 'src/errors.ts'],
];

const SOURCE_ROOTS = ['src', 'bench', 'test'];
const SOURCE_FILE = /\.(c|m)?tsx?$/;

interface Placement {
  layer: number;
  member: string;
}

interface ImportEdge {
  from: string;
  to: string;
  line: number;
}

type Violation = { kind: 'upward'; edge: ImportEdge; fromMember: string; toMember: string } | { kind: 'cycle'; files: string[] } | { kind: 'unplaced'; file: string };

function placementOf(file: string): Placement | undefined {
  let best: Placement | undefined;
  LAYERS.forEach((members, layer) => {
    for (const member of members) {
      const matches = member.endsWith('/') ? file.startsWith(member) : file === member;
      if (matches && (!best || member.length > best.member.length)) best = { layer, member };
    }
  });
  return best;
}

/** Every module specifier a file names, with its line: static imports and re-exports (type-only too), `import x = require()`, `import('...')` calls and `import('...')` types. */
function moduleSpecifiers(fileName: string, text: string): { specifier: string; line: number }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: { specifier: string; line: number }[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ specifier: node.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The source file a specifier names, if it is one of ours: relative paths (NodeNext spells './x.js' for './x.ts') and the package's own name. */
function resolve(from: string, specifier: string, files: ReadonlySet<string>, selfExports: ReadonlyMap<string, string>): string | undefined {
  if (selfExports.has(specifier)) return selfExports.get(specifier);
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  const candidates = [target, target.replace(/\.js$/, '.ts'), target.replace(/\.js$/, '.tsx'), target.replace(/\.mjs$/, '.mts'), target.replace(/\.cjs$/, '.cts')];
  return candidates.find((candidate) => files.has(candidate));
}

/** One loop per strongly connected group of files (Tarjan), found by a breadth-first walk from its first file back to itself. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const connect = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!index.has(next)) {
        connect(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(file, Math.min(low.get(file)!, index.get(next)!));
    }
    if (low.get(file) !== index.get(file)) return;
    const group: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      group.push(member);
    } while (member !== file);
    if (group.length > 1 || graph.get(file)?.includes(file)) groups.push(group);
  };
  for (const file of [...graph.keys()].sort()) if (!index.has(file)) connect(file);

  return groups.map((group) => {
    const inGroup = new Set(group);
    const start = group.sort()[0];
    const cameFrom = new Map<string, string>();
    const queue = [start];
    for (let at = 0; at < queue.length; at++) {
      for (const next of graph.get(queue[at]) ?? []) {
        if (!inGroup.has(next)) continue;
        if (next === start) {
          const loop = [queue[at]];
          while (loop[0] !== start) loop.unshift(cameFrom.get(loop[0])!);
          return [...loop, start];
        }
        if (!cameFrom.has(next)) {
          cameFrom.set(next, queue[at]);
          queue.push(next);
        }
      }
    }
    throw new Error(`no loop through ${start} in its own strongly connected group`);
  });
}

/** `sources` maps repository-relative POSIX paths to file text; `selfExports` maps the package's own specifiers ('flower-native/server') to source files. */
function checkLayers(sources: ReadonlyMap<string, string>, selfExports: ReadonlyMap<string, string> = new Map()): { violations: Violation[]; edges: number } {
  const files = new Set(sources.keys());
  const violations: Violation[] = [];
  const graph = new Map<string, string[]>();
  let edges = 0;
  for (const [from, text] of [...sources].sort(([a], [b]) => a.localeCompare(b))) {
    const fromPlace = placementOf(from);
    if (!fromPlace) violations.push({ kind: 'unplaced', file: from });
    const targets: string[] = [];
    for (const { specifier, line } of moduleSpecifiers(from, text)) {
      const to = resolve(from, specifier, files, selfExports);
      if (!to) continue;
      edges++;
      if (!targets.includes(to)) targets.push(to);
      const toPlace = placementOf(to);
      if (fromPlace && toPlace && toPlace.layer < fromPlace.layer) violations.push({ kind: 'upward', edge: { from, to, line }, fromMember: fromPlace.member, toMember: toPlace.member });
    }
    graph.set(from, targets);
  }
  for (const files of cycles(graph)) violations.push({ kind: 'cycle', files });
  return { violations, edges };
}

function describe(violation: Violation): string {
  switch (violation.kind) {
    case 'upward':
      return `upward import: ${violation.edge.from}:${violation.edge.line} imports ${violation.edge.to} (${violation.fromMember} may not import ${violation.toMember}, a higher layer)`;
    case 'cycle':
      return `import cycle: ${violation.files.join(' -> ')}`;
    case 'unplaced':
      return `no layer: ${violation.file} (place its folder in LAYERS in test/layers.test.ts and in the README's layout section)`;
  }
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function readSources(): Map<string, string> {
  const sources = new Map<string, string>();
  for (const root of SOURCE_ROOTS) {
    for (const entry of fs.readdirSync(path.join(repoRoot, root), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !SOURCE_FILE.test(entry.name)) continue;
      const file = path.join(entry.parentPath, entry.name);
      sources.set(path.relative(repoRoot, file).split(path.sep).join('/'), fs.readFileSync(file, 'utf8'));
    }
  }
  return sources;
}

/** 'flower-native' and its subpaths, from package.json's exports ('./dist/src/server/index.js' is built from 'src/server/index.ts'). */
function readSelfExports(): Map<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; exports: Record<string, string | { default?: string }> };
  const selfExports = new Map<string, string>();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const built = typeof target === 'string' ? target : target.default;
    const source = built?.match(/^\.\/dist\/(.+)\.js$/)?.[1];
    if (source) selfExports.set(path.posix.join(pkg.name, subpath), `${source}.ts`);
  }
  return selfExports;
}

test('every import points down the layer list, no file is in an import cycle, every source folder has a layer', (t) => {
  const sources = readSources();
  const { violations, edges } = checkLayers(sources, readSelfExports());
  // Guards against a scan that silently read nothing (a moved root, a wrong extension filter).
  t.true(sources.has('src/index.ts') && sources.size > 50, `scanned ${sources.size} files`);
  t.true(edges > sources.size, `found ${edges} imports`);
  const report = violations.map(describe);
  for (const line of report) t.log(line);
  t.deepEqual(report, [], `${report.length} layer violations`);
});

test('the checker catches an upward import, a cycle, an import of a package entry and an unplaced folder', (t) => {
  const planted = new Map([
    ['src/kernels/topk.ts', "import type { Flow } from '../flows/spec.js';\nexport const topk = 1;"],
    ['src/flows/spec.ts', "export { topk } from '../kernels/topk.js';\nexport type Flow = string;"],
    ['src/store/a.ts', "export const load = () => import('./b.js');"],
    ['src/store/b.ts', "import { c } from './c.js';\nexport const b = c;"],
    ['src/store/c.ts', "export type A = typeof import('./a.js');\nexport const c = 1;"],
    ['src/cli/main.ts', "import { Workspace } from '../index.js';\nimport { serve } from 'flower-native/server';\nimport sharp from 'sharp';"],
    ['src/index.ts', "export * from './flows/spec.js';"],
    ['src/server/index.ts', 'export const serve = 1;'],
    ['src/misc/helper.ts', 'export const helper = 1;'],
  ]);
  const { violations } = checkLayers(planted, new Map([['flower-native/server', 'src/server/index.ts']]));
  t.deepEqual(violations.map(describe).sort(), [
    'import cycle: src/flows/spec.ts -> src/kernels/topk.ts -> src/flows/spec.ts',
    'import cycle: src/store/a.ts -> src/store/b.ts -> src/store/c.ts -> src/store/a.ts',
    "no layer: src/misc/helper.ts (place its folder in LAYERS in test/layers.test.ts and in the README's layout section)",
    'upward import: src/cli/main.ts:1 imports src/index.ts (src/cli/ may not import src/index.ts, a higher layer)',
    'upward import: src/cli/main.ts:2 imports src/server/index.ts (src/cli/ may not import src/server/index.ts, a higher layer)',
    'upward import: src/kernels/topk.ts:1 imports src/flows/spec.ts (src/kernels/ may not import src/flows/, a higher layer)',
  ]);
});

test('the checker accepts downward and sideways imports', (t) => {
  const clean = new Map([
    ['test/api.test.ts', "import { flowerImage } from '../bench/fixtures.js';\nimport { open } from '../src/index.js';"],
    ['bench/fixtures.ts', "export { open as flowerImage } from '../src/index.js';"],
    ['src/index.ts', "export { open } from './flows/search.js';\nexport { serve } from './server/index.js';"],
    ['src/server/index.ts', "export { serve } from './serve.js';"],
    ['src/server/serve.ts', "import '../flows/search.js';\nexport const serve = 1;"],
    ['src/flows/search.ts', "import { rank } from '../search/rank.js';\nexport const open = rank;"],
    ['src/search/rank.ts', "import { topk } from '../kernels/index.js';\nimport { FlowerError } from '../errors.js';\nexport const rank = [topk, FlowerError];"],
    ['src/kernels/index.ts', "import { clamp } from '../util/math.js';\nexport const topk = clamp;"],
    ['src/util/math.ts', 'export const clamp = 1;'],
    ['src/errors.ts', "import { clamp } from './util/math.js';\nexport class FlowerError { code = clamp; }"],
  ]);
  t.deepEqual(checkLayers(clean).violations.map(describe), []);
});
