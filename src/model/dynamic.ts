/**
 * A shape-dynamic copy of a float model, for region pooling: one encoder pass over the whole
 * resized image, then pooling of the last feature map at the windows' positions.
 *
 * Exporters from TensorFlow write TF "SAME" padding as fixed ONNX pads computed for the input size
 * the model was exported at (MobileNetV2 at 224: [0, 0, 1, 1] on each stride-2 conv). Those pads are
 * only right for even sizes; a stride > 1 conv whose pads are asymmetric becomes `auto_pad =
 * SAME_UPPER` here, which onnxruntime computes per input size (and which gives the same pads at the
 * export size, so a 224×224 input gives the original embedding). The input's height and width
 * become the symbolic dims H and W, and the last feature map (what the global average pool behind
 * the embedding reads) is added as the output `features` (N × C × ⌈H/stride⌉ × ⌈W/stride⌉).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.NodeProto;

export interface DynamicShapeModel {
  readonly bytes: Uint8Array;
  /** The embedding output, unchanged (global average pool of `features`). */
  readonly embedding: string;
  /** The added output: the feature map the embedding's global pool reads. */
  readonly features: string;
  /** Feature-map channels (= the embedding dim). */
  readonly channels: number;
  /** Input pixels per feature-map cell: the product of the conv strides on the way (32 for MobileNetV2). */
  readonly stride: number;
  /** Convs whose fixed pads became auto_pad = SAME_UPPER. */
  readonly samePadded: number;
}

const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity']);

/**
 * `bytes`: a model whose `embedding` output is a global average pool (GlobalAveragePool, or
 * ReduceMean over H and W) of a feature map, maybe behind Flatten / Reshape / Squeeze, as loadModel
 * leaves it (declared or synthesized). Other outputs are dropped.
 */
export function dynamicShapeModel(bytes: Uint8Array, embedding: string): DynamicShapeModel {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as Graph | null;
  if (!graph) throw new Error('the ONNX file has no graph');
  const producer = new Map<string, Node>();
  for (const node of graph.node as Node[]) for (const out of node.output) producer.set(out, node);
  const embeddingOut = graph.output.find((o) => o.name === embedding);
  if (!embeddingOut) throw new Error(`the ONNX graph has no output "${embedding}"`);

  let node = producer.get(embedding);
  for (let hops = 0; node && PASS_THROUGH.has(node.opType) && hops < 8; hops++) node = producer.get(node.input[0]);
  if (!node || !(node.opType === 'GlobalAveragePool' || node.opType === 'ReduceMean')) {
    throw new Error(`the embedding "${embedding}" is not a global average pool of a feature map (found ${node ? node.opType : 'a graph input'}), so it has no map to pool regions of`);
  }
  const features = node.input[0];

  const initializers = new Set(graph.initializer.map((t) => t.name));
  const input = graph.input.find((i) => !initializers.has(i.name));
  const dims = input?.type?.tensorType?.shape?.dim;
  if (!input || !dims || dims.length !== 4) throw new Error('the ONNX graph has no 4-d (NCHW) input');
  dims[2] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'H' });
  dims[3] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'W' });

  // Strides from the input to the feature map, and SAME_UPPER for asymmetric fixed pads.
  const upstream = new Set<Node>();
  const stack = [features];
  while (stack.length > 0) {
    const p = producer.get(stack.pop()!);
    if (!p || upstream.has(p)) continue;
    upstream.add(p);
    stack.push(...p.input);
  }
  let samePadded = 0;
  for (const conv of graph.node as Node[]) {
    if (conv.opType !== 'Conv' && conv.opType !== 'MaxPool' && conv.opType !== 'AveragePool') continue;
    const strides = conv.attribute.find((a) => a.name === 'strides')?.ints?.map(Number) ?? [1, 1];
    const padsAt = conv.attribute.findIndex((a) => a.name === 'pads');
    if (padsAt < 0 || strides.every((s) => s === 1)) continue;
    const pads = conv.attribute[padsAt].ints!.map(Number);
    const half = pads.length / 2;
    if (pads.slice(0, half).every((p, i) => p === pads[half + i])) continue; // symmetric: right for any size
    conv.attribute.splice(padsAt, 1);
    conv.attribute = conv.attribute.filter((a) => a.name !== 'auto_pad');
    conv.attribute.push(onnx.AttributeProto.create({ name: 'auto_pad', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('SAME_UPPER') }));
    samePadded++;
  }
  let stride = 1;
  for (const p of upstream) {
    if (p.opType !== 'Conv' && p.opType !== 'MaxPool' && p.opType !== 'AveragePool') continue;
    stride *= Number(p.attribute.find((a) => a.name === 'strides')?.ints?.[0] ?? 1);
  }
  const channels = Number(embeddingOut.type?.tensorType?.shape?.dim?.[1]?.dimValue ?? 0);
  if (!(channels > 0)) throw new Error(`the embedding output "${embedding}" has no fixed size`);

  // Shapes inferred for the export size would contradict the new ones.
  graph.valueInfo = [];
  const batch = dims[0]?.dimParam ? { dimParam: dims[0].dimParam } : { dimParam: 'N' };
  graph.output = [
    embeddingOut,
    onnx.ValueInfoProto.create({
      name: features,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [batch, { dimValue: channels }, { dimParam: 'h' }, { dimParam: 'w' }] } } },
    }),
  ];
  return { bytes: onnx.ModelProto.encode(model).finish(), embedding, features, channels, stride, samePadded };
}
