/**
 * Flow files: parse the YAML keeping source positions, so that every mistake (unknown key,
 * wrong type, unknown `needs`, cycle, missing executor) is reported as `file:line: problem`.
 * A typo must never fall back silently to a default.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { FlowError } from '../errors.js';
import { builtinExecutors } from '../executors/builtin.js';
import type { ExecutorClass, ParamSpec } from '../executors/types.js';

export interface PodSpec {
  readonly name: string;
  /** As written in the file: a built-in name or a module path. */
  readonly uses: string;
  readonly executor: ExecutorClass;
  /** Pods this one waits for; [] for the first pod (it receives the input). */
  readonly needs: readonly string[];
  /** `with:` parameters, defaults filled in for executors that declare them. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly replicas: number;
  readonly line: number;
}

export interface FlowSpec {
  readonly file: string;
  readonly name: string;
  /** Maximum documents in flight at once (backpressure). */
  readonly prefetch: number;
  /** In topological order: every pod comes after the pods it needs. */
  readonly pods: readonly PodSpec[];
}

const TOP_KEYS = ['name', 'description', 'prefetch', 'pods'] as const;
const POD_KEYS = ['uses', 'needs', 'with', 'replicas', 'description'] as const;
const DEFAULT_PREFETCH = 16;

/** Directory of the flows shipped with the package (flows/ at the package root). */
export const builtinFlowsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'flows');

/** The shipped flow of that kind, or the user's file. */
export function flowFile(kind: 'index' | 'query' | 'query-regions', userFile?: string): string {
  return userFile ? path.resolve(userFile) : path.join(builtinFlowsDir, `${kind}.yml`);
}

export async function loadFlow(file: string): Promise<FlowSpec> {
  const abs = path.resolve(file);
  let source: string;
  try {
    source = await readFile(abs, 'utf8');
  } catch (err) {
    throw new FlowError(shown(abs), undefined, `cannot read flow file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseFlow(source, abs);
}

/** Parse and validate flow YAML; `file` names the source in errors and anchors relative `uses:` paths. */
export async function parseFlow(source: string, file: string): Promise<FlowSpec> {
  const name = shown(file);
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const firstError = doc.errors[0];
  if (firstError) throw new FlowError(name, lines.linePos(firstError.pos[0]).line, firstError.message.split('\n')[0]);
  const lineOf = (node: Node | Pair | null | undefined): number | undefined => {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  const fail = (node: Node | Pair | null | undefined, problem: string): never => {
    throw new FlowError(name, lineOf(node), problem);
  };

  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'a flow is a mapping with `pods:`');
  checkKeys(root, TOP_KEYS, 'at top level', fail);
  const flowName = optionalScalar(root, 'name', 'string', fail) ?? path.basename(file, path.extname(file));
  const prefetch = optionalScalar(root, 'prefetch', 'number', fail) ?? DEFAULT_PREFETCH;
  if (!Number.isInteger(prefetch) || prefetch < 1) fail(root.get('prefetch', true), `prefetch must be an integer >= 1, got ${prefetch}`);
  const podsNode = root.get('pods', true) as Node | undefined;
  if (!isMap(podsNode) || podsNode.items.length === 0) return fail(podsNode ?? root, '`pods:` must be a non-empty mapping of pod name to pod');

  const raw: (Omit<PodSpec, 'needs'> & { needs: string[]; needsNode: Node | Pair })[] = [];
  for (const pair of podsNode.items) {
    const podName = String((pair.key as Node & { value?: unknown }).value ?? pair.key);
    const pod = pair.value as Node | null;
    if (!isMap(pod)) return fail(pair, `pod '${podName}' must be a mapping with \`uses:\``);
    checkKeys(pod, POD_KEYS, `in pod '${podName}'`, fail);
    const uses = optionalScalar(pod, 'uses', 'string', fail) ?? fail(pair, `pod '${podName}' has no \`uses:\``);
    const usesNode = pod.get('uses', true) as Node;
    const executor = await resolveExecutor(uses, file, (problem) => fail(usesNode, `pod '${podName}': ${problem}`));
    const replicasNode = pod.get('replicas', true) as Node | undefined;
    const replicas = optionalScalar(pod, 'replicas', 'number', fail) ?? 1;
    if (replicasNode && !executor.supportsReplicas) fail(replicasNode, `pod '${podName}': executor '${uses}' does not use replicas`);
    if (!Number.isInteger(replicas) || replicas < 1) fail(replicasNode, `pod '${podName}': replicas must be an integer >= 1, got ${replicas}`);
    const withNode = pod.get('with', true) as Node | undefined;
    if (withNode !== undefined && withNode !== null && !isMap(withNode)) fail(withNode, `pod '${podName}': \`with:\` must be a mapping`);
    const params = checkParams(withNode as YAMLMap | undefined, executor.params, podName, fail);
    const needsNode = pod.get('needs', true) as Node | undefined;
    let needs: string[];
    if (needsNode === undefined) needs = raw.length ? [raw[raw.length - 1].name] : [];
    else if (isScalar(needsNode) && typeof needsNode.value === 'string') needs = [needsNode.value];
    else if (isSeq(needsNode) && needsNode.items.every((item) => isScalar(item) && typeof item.value === 'string')) {
      needs = needsNode.items.map((item) => String((item as { value: string }).value));
    } else return fail(needsNode, `pod '${podName}': needs must be a pod name or a list of pod names`);
    raw.push({ name: podName, uses, executor, needs, params, replicas, line: lineOf(pair) ?? 0, needsNode: needsNode ?? pair });
  }

  const byName = new Map(raw.map((pod) => [pod.name, pod]));
  for (const pod of raw) {
    for (const need of pod.needs) {
      if (need === 'gateway') continue;
      if (!byName.has(need)) fail(pod.needsNode, `pod '${pod.name}' needs unknown pod '${need}'${suggest(need, [...byName.keys()])}`);
      if (need === pod.name) fail(pod.needsNode, `pod '${pod.name}' needs itself`);
    }
  }
  // `needs: gateway` marks an entry pod explicitly, as in the original flows.
  const pods = raw.map(({ needsNode: _, ...pod }) => ({ ...pod, needs: pod.needs.filter((need) => need !== 'gateway') }));
  const ordered = topologicalOrder(pods, (pod, cycle) => fail(byName.get(pod)!.needsNode, `needs form a cycle: ${cycle.join(' -> ')}`));
  if (ordered.filter((pod) => pod.needs.length === 0).length !== 1) {
    fail(
      podsNode,
      `a flow has exactly one entry pod (without needs), found: ${ordered
        .filter((pod) => pod.needs.length === 0)
        .map((pod) => pod.name)
        .join(', ')}`,
    );
  }
  return { file, name: flowName, prefetch, pods: ordered };
}

type Fail = (node: Node | Pair | null | undefined, problem: string) => never;

function checkKeys(map: YAMLMap, allowed: readonly string[], where: string, fail: Fail): void {
  for (const pair of map.items) {
    const key = String((pair.key as { value?: unknown }).value ?? pair.key);
    if (!allowed.includes(key)) fail(pair, `unknown key '${key}' ${where}${suggest(key, allowed)}`);
  }
}

function optionalScalar<T extends 'string' | 'number'>(map: YAMLMap, key: string, type: T, fail: Fail): (T extends 'string' ? string : number) | undefined {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return undefined;
  if (!isScalar(node) || typeof node.value !== type) fail(node, `'${key}' must be a ${type}`);
  return (node as unknown as { value: never }).value;
}

/** Check `with:` against the executor's declared parameters and fill in the defaults. */
function checkParams(withNode: YAMLMap | undefined, specs: ExecutorClass['params'], pod: string, fail: Fail): Record<string, unknown> {
  const given = new Map<string, { value: unknown; pair: Pair }>();
  for (const pair of withNode?.items ?? []) {
    const key = String((pair.key as { value?: unknown }).value ?? pair.key);
    const value: unknown = isScalar(pair.value) ? pair.value.value : (pair.value as Node | null)?.toJSON();
    given.set(key, { value, pair });
  }
  if (!specs) return Object.fromEntries([...given].map(([key, { value }]) => [key, value]));
  const params: Record<string, unknown> = {};
  for (const [key, { value, pair }] of given) {
    const spec = specs[key];
    if (!spec) return fail(pair, `unknown key '${key}' in pod '${pod}' with:${suggest(key, Object.keys(specs))}`);
    const problem = paramProblem(value, spec);
    if (problem) fail(pair.value as Node, `pod '${pod}' with: ${key} ${problem}`);
    params[key] = value;
  }
  for (const [key, spec] of Object.entries(specs)) if (!(key in params)) params[key] = spec.default;
  return params;
}

/** Why `value` does not fit `spec`, or undefined when it does. */
function paramProblem(value: unknown, spec: ParamSpec): string | undefined {
  const type = typeof spec.default;
  if (typeof value !== type) return `must be a ${type}, got ${JSON.stringify(value)}`;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || (spec.int && !Number.isInteger(value))) return `must be ${spec.int ? 'an integer' : 'a finite number'}, got ${value}`;
    if (spec.min !== undefined && value < spec.min) return `must be >= ${spec.min}, got ${value}`;
    if (spec.max !== undefined && value > spec.max) return `must be <= ${spec.max}, got ${value}`;
  }
  if (typeof value === 'string' && spec.values && !spec.values.includes(value)) return `must be one of ${spec.values.join(', ')}, got '${value}'`;
  return undefined;
}

async function resolveExecutor(uses: string, flowFile: string, fail: (problem: string) => never): Promise<ExecutorClass> {
  const builtin = builtinExecutors[uses];
  if (builtin) return builtin;
  if (!/^\.{0,2}\/|^[A-Za-z]:[\\/]/.test(uses)) {
    return fail(`unknown executor '${uses}'${suggest(uses, Object.keys(builtinExecutors))} (built-ins: ${Object.keys(builtinExecutors).join(', ')}; modules: ./path.js)`);
  }
  const modulePath = path.resolve(path.dirname(flowFile), uses);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    return fail(`cannot load executor module ${modulePath}: ${(err as Error).message.split('\n')[0]}`);
  }
  const cls = mod.default ?? mod.Executor;
  if (typeof cls !== 'function' || typeof (cls as { prototype?: { process?: unknown } }).prototype?.process !== 'function') {
    return fail(`${modulePath} must export (default or as \`Executor\`) a class with a process(doc) method`);
  }
  return cls as ExecutorClass;
}

function topologicalOrder<P extends { name: string; needs: readonly string[] }>(pods: P[], onCycle: (pod: string, cycle: string[]) => never): P[] {
  const byName = new Map(pods.map((pod) => [pod.name, pod]));
  const state = new Map<string, 'visiting' | 'done'>();
  const ordered: P[] = [];
  const visit = (pod: P, trail: string[]): void => {
    if (state.get(pod.name) === 'done') return;
    if (state.get(pod.name) === 'visiting') onCycle(pod.name, [...trail.slice(trail.indexOf(pod.name)), pod.name]);
    state.set(pod.name, 'visiting');
    for (const need of pod.needs) visit(byName.get(need)!, [...trail, pod.name]);
    state.set(pod.name, 'done');
    ordered.push(pod);
  };
  for (const pod of pods) visit(pod, []);
  return ordered;
}

/** " (did you mean 'x'?)" for the closest candidate within edit distance 2, else "". */
function suggest(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : ` (did you mean '${best}'?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The file as users wrote it: relative to the working directory when inside it. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}
