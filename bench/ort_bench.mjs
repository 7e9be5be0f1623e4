// ONNX Runtime (npm onnxruntime-node, CPU) side of bench/compare.py.
// usage: node ort_bench.mjs MODEL.onnx --shape B,C,H,W --threads T --warmup N --iters N
//        [--input in.f32 --dump out.f32]
// Prints one JSON line: median/p10/p90 latency in ms.
import { createRequire } from 'module';
import fs from 'fs';
import process from 'process';

const require = createRequire(import.meta.url);
const ort = require(process.env.ORT_NODE_PATH || 'onnxruntime-node');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const model = process.argv[2];
const shape = arg('--shape', '1,3,224,224').split(',').map(Number);
const threads = Number(arg('--threads', '1'));
const warmup = Number(arg('--warmup', '5'));
const iters = Number(arg('--iters', '30'));
const numel = shape.reduce((a, b) => a * b, 1);

const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
let data = new Float32Array(numel);
const inputPath = arg('--input', null);
if (inputPath) {
  const buf = fs.readFileSync(inputPath);
  data = new Float32Array(buf.buffer, buf.byteOffset, numel).slice();
} else {
  let s = 12345;
  for (let i = 0; i < numel; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = (s >>> 9) / 4194304 - 1;
  }
}
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
let out;
for (let i = 0; i < warmup; i++) out = await session.run(feeds);
const times = [];
for (let i = 0; i < iters; i++) {
  const t0 = process.hrtime.bigint();
  out = await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
const dump = arg('--dump', null);
if (dump) {
  const logits = out[session.outputNames[0]].data;
  fs.writeFileSync(dump, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
}
times.sort((a, b) => a - b);
const pick = (q) => times[Math.min(times.length - 1, Math.round(q * (times.length - 1)))];
console.log(JSON.stringify({ median_ms: pick(0.5), p10_ms: pick(0.1), p90_ms: pick(0.9) }));
