import { loadMnist } from '../../src/data/mnist.ts';
import { createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { exportForServing } from '../../src/ml/onnx/export-for-serving.ts';
import { LocalEngine } from '../../src/serving/inference.ts';
import { untrainedModelFiles } from './serving.ts';

// Run by test/serving/without-onnxruntime.test.ts in a process where importing onnxruntime-node
// fails, as on a machine whose native library cannot load: prints what serving and the export did.
await initBackend('wasm');
const files = await untrainedModelFiles(1);
// The engine on this thread: loader hooks given with --import do not reach worker threads on Node
// 20, and the inference threads load a version with the same loadServableModel.
const engine = new LocalEngine();
const handle = await engine.load(1, files);
const { probabilities } = await engine.predict(handle, new Uint8Array(784 * 2).fill(30), 2);
await engine.close();

const model = createModel('cnn', { learningRate: 0.001, seed: 1 });
const test = await loadMnist('test');
const { onnx, record, evaluation } = await exportForServing(model, test, Uint32Array.from({ length: 100 }, (_, i) => i));
console.log(JSON.stringify({ engine: handle.engine, probabilities: probabilities.length, onnx: onnx?.length ?? null, record, evaluated: evaluation.count }));
process.exit(0);
