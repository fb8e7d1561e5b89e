/** Which code runs a loaded version: ONNX Runtime on its `model.onnx`, or TensorFlow.js on its layers files. */
export const INFERENCE_ENGINES = ['onnxruntime', 'tfjs'] as const;
export type InferenceEngineName = (typeof INFERENCE_ENGINES)[number];
