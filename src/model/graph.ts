/**
 * ONNX graph surgery for models without an embedding output: expose the input of the final
 * classifier layer (the last Gemm / MatMul / 1x1 Conv before the logits) as a graph output.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.NodeProto;

/** Shape-only or per-element ops that may sit between the classifier and the logits output. */
const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Softmax', 'LogSoftmax', 'Sigmoid', 'Dropout', 'Cast']);

export interface ModelGraphInfo {
  /** First graph input that is not an initializer. */
  input: { name: string; dims: (number | string)[] };
  outputs: string[];
}

export function describeGraph(bytes: Uint8Array): ModelGraphInfo {
  const graph = decodeGraph(bytes);
  const input = dataInput(graph);
  if (!input) throw new Error('the ONNX graph has no input');
  const dims = input.type?.tensorType?.shape?.dim?.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))) ?? [];
  return { input: { name: input.name, dims }, outputs: graph.output.map((o) => o.name ?? '') };
}

export interface SynthesizedEmbedding {
  /** The edited model: the embedding is its only output. */
  bytes: Uint8Array;
  name: string;
  dim: number;
  /** The classifier node whose input became the embedding, e.g. "Gemm v171". */
  classifier: string;
}

/**
 * Add `Flatten(axis=1)` of the final classifier's input as the output `name` (N × dim), following
 * the logits output `from` (default: the first output) back through shape-only ops. The model's
 * other outputs are dropped: the encoder fetches only the embedding.
 */
export function synthesizeEmbedding(bytes: Uint8Array, opts: { from?: string; name?: string } = {}): SynthesizedEmbedding {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as Graph | null;
  if (!graph) throw new Error('the ONNX file has no graph');
  const from = opts.from ?? graph.output[0]?.name;
  if (!from || !graph.output.some((o) => o.name === from)) throw new Error(`the ONNX graph has no output "${from ?? ''}" to follow back to the classifier`);

  const producer = new Map<string, Node>();
  for (const node of graph.node as Node[]) for (const out of node.output) producer.set(out, node);
  const constants = constantTensors(graph);

  let tensor = from;
  let node = producer.get(tensor);
  for (let hops = 0; node && hops < graph.node.length; hops++) {
    if (PASS_THROUGH.has(node.opType)) {
      tensor = node.input[0]!;
    } else if (node.opType === 'Add') {
      // MatMul + Add(bias): follow the computed operand, not the bias constant.
      tensor = node.input.find((name) => !constants.has(name))!;
    } else {
      break;
    }
    node = producer.get(tensor);
  }
  if (!node || !['Gemm', 'MatMul', 'Conv'].includes(node.opType)) {
    throw new Error(`cannot find the classifier layer behind output "${from}" (found ${node ? node.opType : 'a graph input'}); add an embedding output to model.json`);
  }
  const features = node.input[0];
  const dim = classifierInputDim(node, constants);

  const taken = new Set<string>([...producer.keys(), ...graph.input.map((i) => i.name ?? ''), ...constants.keys()]);
  let name = opts.name ?? 'embedding';
  for (let i = 0; taken.has(name); i++) name = `${opts.name ?? 'embedding'}_${i}`;

  graph.node.push(
    onnx.NodeProto.create({
      opType: 'Flatten',
      name: `${name}_flatten`,
      input: [features],
      output: [name],
      attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
    }),
  );
  const batch = dataInput(graph)?.type?.tensorType?.shape?.dim?.[0];
  const batchDim = batch?.dimParam ? { dimParam: batch.dimParam } : { dimParam: 'N' };
  graph.output = [
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [batchDim, { dimValue: dim }] } } },
    }),
  ];
  return { bytes: onnx.ModelProto.encode(model).finish(), name, dim, classifier: `${node.opType} ${node.name || node.output[0]}` };
}

function decodeGraph(bytes: Uint8Array): Graph {
  const graph = onnx.ModelProto.decode(bytes).graph as Graph | null;
  if (!graph) throw new Error('the ONNX file has no graph');
  return graph;
}

/** The first graph input that is not an initializer (older exporters list weights as inputs too). */
function dataInput(graph: Graph): onnxProto.onnx.ValueInfoProto | undefined {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  return graph.input.find((i) => !initializers.has(i.name)) as onnxProto.onnx.ValueInfoProto | undefined;
}

/** Initializers and Constant-node outputs, by name, as their dims. */
function constantTensors(graph: Graph): Map<string, number[]> {
  const dims = new Map<string, number[]>();
  for (const t of graph.initializer) dims.set(t.name ?? '', (t.dims ?? []).map(Number));
  for (const node of graph.node as Node[]) {
    const value = node.opType === 'Constant' ? node.attribute.find((a) => a.name === 'value')?.t : undefined;
    if (value) dims.set(node.output[0], (value.dims ?? []).map(Number));
  }
  return dims;
}

/** Features per sample entering the classifier, from its weight's shape. */
function classifierInputDim(node: Node, constants: Map<string, number[]>): number {
  const weight = constants.get(node.input[1] ?? '');
  if (!weight) throw new Error(`the classifier ${node.opType} "${node.name}" has no constant weight to read the embedding size from`);
  const attr = (name: string) => Number(node.attribute.find((a) => a.name === name)?.i ?? 0);
  switch (node.opType) {
    case 'Gemm':
      return attr('transB') ? weight[1] : weight[0];
    case 'MatMul':
      return weight[weight.length - 2];
    default: {
      // Conv [out, in/group, kh, kw]: a 1x1 conv over pooled 1x1 features, as in MobileNet's head.
      if (weight.slice(2).some((k) => k !== 1)) throw new Error(`the classifier Conv "${node.name}" is not 1x1; add an embedding output to model.json`);
      return weight[1] * Math.max(1, attr('group'));
    }
  }
}
