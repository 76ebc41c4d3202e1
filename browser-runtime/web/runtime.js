// webaccel's in-page runtime. The host (Rust, over CDP) imports this module into a page served
// from the loopback asset server, then calls its exports. It loads, runs and times models with
// onnxruntime-web, and reports what the browser can do. Nothing here invents a number: a value
// the browser cannot give is returned as null, together with the error it raised.
//
// Tensors never travel as JSON numbers: all inputs of a call form one binary body and all
// outputs another. Small bodies ride base64-encoded inside the CDP call; large ones go over the
// asset server as HTTP bodies.

import * as ort from './ort/ort.all.min.mjs';

const sessions = new Map();
let configured = false;

function errorText(e) {
  if (e === undefined || e === null) return 'unknown error';
  if (typeof e === 'string') return e;
  return e.name ? `${e.name}: ${e.message}` : String(e.message ?? e);
}

// ORT fixes its wasm settings at the first session of a page, so they are set once, here.
export function configure({ wasmPaths, numThreads, logLevel }) {
  if (configured) {
    return { numThreads: ort.env.wasm.numThreads, alreadyConfigured: true };
  }
  ort.env.wasm.wasmPaths = wasmPaths;
  ort.env.wasm.numThreads = numThreads;
  ort.env.logLevel = logLevel ?? 'warning';
  configured = true;
  return { numThreads: ort.env.wasm.numThreads, ortVersion: ort.env.versions?.web ?? null };
}

// The smallest module that validates only where the engine supports fixed-width SIMD (it
// returns a v128). Threads are probed by creating shared memory instead.
const WASM_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

function wasmThreads() {
  try {
    if (typeof SharedArrayBuffer === 'undefined') return { available: false, error: 'SharedArrayBuffer is not defined (page is not cross-origin isolated)' };
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return { available: mem.buffer instanceof SharedArrayBuffer, error: null };
  } catch (e) {
    return { available: false, error: errorText(e) };
  }
}

async function webgpuCapabilities() {
  if (!('gpu' in navigator)) {
    return { available: false, error: 'navigator.gpu is undefined', adapter: null, features: [], limits: {} };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) {
      return { available: false, error: 'requestAdapter() returned null', adapter: null, features: [], limits: {} };
    }
    const info = adapter.info ?? {};
    const limits = {};
    for (const key in adapter.limits) {
      const v = adapter.limits[key];
      if (typeof v === 'number') limits[key] = v;
    }
    return {
      available: true,
      error: null,
      adapter: {
        vendor: info.vendor ?? null,
        architecture: info.architecture ?? null,
        device: info.device ?? null,
        description: info.description ?? null,
        isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null,
      },
      features: [...adapter.features].sort(),
      limits,
    };
  } catch (e) {
    return { available: false, error: errorText(e), adapter: null, features: [], limits: {} };
  }
}

async function webnnCapabilities() {
  const devices = {};
  for (const deviceType of ['cpu', 'gpu', 'npu']) {
    if (!('ml' in navigator)) {
      devices[deviceType] = { available: false, error: 'navigator.ml is undefined' };
      continue;
    }
    try {
      const context = await navigator.ml.createContext({ deviceType });
      devices[deviceType] = { available: true, error: null };
      context.destroy?.();
    } catch (e) {
      devices[deviceType] = { available: false, error: errorText(e) };
    }
  }
  return devices;
}

export async function capabilities() {
  let simd = false;
  try {
    simd = WebAssembly.validate(WASM_SIMD_PROBE);
  } catch (e) {
    simd = false;
  }
  return {
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency ?? null,
    crossOriginIsolated: self.crossOriginIsolated === true,
    wasm: { simd, threads: wasmThreads() },
    webgpu: await webgpuCapabilities(),
    webnn: await webnnCapabilities(),
  };
}

function executionProviders(platform, device) {
  switch (platform) {
    case 'wasm':
      return ['wasm'];
    case 'webgpu':
      return ['webgpu'];
    case 'webnn':
      return [{ name: 'webnn', deviceType: device ?? 'cpu' }];
    default:
      throw new Error(`unknown platform ${platform}`);
  }
}

// What the graph declares for its inputs, so the host can build tensors for models it does
// not know (symbolic dimensions come back as their names).
function inputMetadata(session) {
  return (session.inputMetadata ?? []).map((m) => ({
    name: m.name,
    type: m.isTensor ? m.type : null,
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'bigint' ? Number(d) : d)) : [],
  }));
}

function loaded(session, sessionCreateMs, cached) {
  return { cached, sessionCreateMs, inputNames: session.inputNames, outputNames: session.outputNames, inputs: inputMetadata(session) };
}

// Loads a model into an InferenceSession and keeps it under `key` for later runs.
export async function load(key, { modelUrl, platform, device, freeDimensionOverrides }) {
  const existing = sessions.get(key);
  if (existing) return loaded(existing.session, existing.sessionCreateMs, true);
  const options = {
    executionProviders: executionProviders(platform, device),
    graphOptimizationLevel: 'all',
  };
  if (freeDimensionOverrides) options.freeDimensionOverrides = freeDimensionOverrides;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelUrl, options);
  const sessionCreateMs = performance.now() - t0;
  sessions.set(key, { session, sessionCreateMs });
  return loaded(session, sessionCreateMs, false);
}

// Loads several models, concurrently or one after another, and times the whole: what
// `parallel_loading` changes for a multi-model pipeline.
export async function loadAll(list, parallel) {
  const t0 = performance.now();
  let sessions;
  if (parallel) {
    sessions = await Promise.all(list.map(({ key, ...request }) => load(key, request)));
  } else {
    sessions = [];
    for (const { key, ...request } of list) sessions.push(await load(key, request));
  }
  return { wallMs: performance.now() - t0, sessions };
}

export async function unload(key) {
  const entry = sessions.get(key);
  if (!entry) return false;
  sessions.delete(key);
  await entry.session.release();
  return true;
}

const TYPED = {
  float32: Float32Array,
  float16: typeof Float16Array === 'undefined' ? Uint16Array : Float16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

const fromBase64 = (text) =>
  typeof Uint8Array.fromBase64 === 'function'
    ? Uint8Array.fromBase64(text)
    : Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toBase64 = (bytes) =>
  typeof bytes.toBase64 === 'function' ? bytes.toBase64() : btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));

// All inputs of a call arrive as one binary body; each descriptor says where its bytes lie in
// it. A small body comes base64-encoded inside the call itself (an HTTP request per call would
// cost more than the inference); a large one is fetched from the asset server.
async function receiveBody({ inputsUrl, inputsBase64 }) {
  if (typeof inputsBase64 === 'string') return fromBase64(inputsBase64).buffer;
  const response = await fetch(inputsUrl);
  if (!response.ok) throw new Error(`GET ${inputsUrl} gave HTTP ${response.status}`);
  return response.arrayBuffer();
}

// The mirror of receiveBody: outputs up to `inlineLimit` bytes go back base64-encoded in the
// call's result, larger ones are POSTed to `outputUrl` as one binary body.
async function sendBody(parts, total, { outputUrl, inlineLimit }) {
  if (total <= inlineLimit) {
    const joined = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.byteLength;
    }
    return toBase64(joined);
  }
  const posted = await fetch(outputUrl, { method: 'POST', body: new Blob(parts) });
  if (!posted.ok) throw new Error(`POST ${outputUrl} gave HTTP ${posted.status}`);
  return null;
}

async function inputFeeds(transfer, inputs) {
  const body = await receiveBody(transfer);
  const feeds = {};
  for (const { name, dtype, dims, byteOffset, byteLength } of inputs) {
    const Typed = TYPED[dtype];
    if (!Typed) throw new Error(`input ${name}: unsupported dtype ${dtype}`);
    // slice() copies into a fresh, aligned buffer: typed arrays need aligned offsets.
    feeds[name] = new ort.Tensor(dtype, new Typed(body.slice(byteOffset, byteOffset + byteLength)), dims);
  }
  return feeds;
}

// What the browser itself reports of this page's memory, where it exposes it: Chromium's
// measureUserAgentSpecificMemory() under cross-origin isolation. It answers after a garbage
// collection, so it is bounded by a timeout; no answer is null, never an estimate.
async function measureMemory(timeoutMs) {
  if (!self.crossOriginIsolated || typeof performance.measureUserAgentSpecificMemory !== 'function') {
    return { bytes: null, source: null, error: 'performance.measureUserAgentSpecificMemory is not available' };
  }
  try {
    const timeout = new Promise((resolve) => setTimeout(() => resolve(null), timeoutMs));
    const result = await Promise.race([performance.measureUserAgentSpecificMemory(), timeout]);
    if (!result) return { bytes: null, source: null, error: `no answer within ${timeoutMs} ms` };
    return { bytes: result.bytes, source: 'performance.measureUserAgentSpecificMemory', error: null };
  } catch (e) {
    return { bytes: null, source: null, error: errorText(e) };
  }
}

// One inference as a function: a plain session.run, or, for a recurrent model, a walk over
// the rows of `sequence.over` that feeds the outputs named in `sequence.carry` back in as
// inputs and stacks each step's fetched outputs. Carried state starts from the given feeds on
// every call, so each timed run processes the same sequence from the same start.
function inference(session, feeds, fetches, sequence) {
  const names = fetches ?? session.outputNames;
  if (!sequence) return () => session.run(feeds, names);
  const steps = feeds[sequence.over];
  if (!steps) throw new Error(`sequence input ${sequence.over} is not among the inputs`);
  const count = steps.dims[0];
  const rowDims = [1, ...steps.dims.slice(1)];
  const rowLength = steps.dims.slice(1).reduce((a, b) => a * b, 1);
  return async () => {
    const stepFeeds = { ...feeds };
    const collected = Object.fromEntries(names.map((n) => [n, []]));
    let out;
    for (let i = 0; i < count; i++) {
      stepFeeds[sequence.over] = new ort.Tensor(steps.type, steps.data.subarray(i * rowLength, (i + 1) * rowLength), rowDims);
      out = await session.run(stepFeeds);
      for (const [from, to] of Object.entries(sequence.carry)) stepFeeds[to] = out[from];
      for (const n of names) collected[n].push(out[n].data);
    }
    const results = {};
    for (const n of names) {
      const Typed = out[n].data.constructor;
      const per = out[n].data.length;
      const stacked = new Typed(per * count);
      collected[n].forEach((d, i) => stacked.set(d, i * per));
      results[n] = new ort.Tensor(out[n].type, stacked, [count, ...out[n].dims]);
    }
    return results;
  };
}

// Runs a loaded model. On a session's first call, `precompile` first makes one warm-up run
// (shader compilation, first allocations: the cold cost, reported as precompileMs); then the
// session's first run is timed on its own and remembered, so later calls report it without
// running it again. Then untimed warm-up runs (`warmup` of them, for at least `warmupMs`) and
// `runs` timed runs. The outputs of the last
// run go back through sendBody.
export async function run(key, { transfer, inputs, warmup, warmupMs, runs, precompile, measureMemoryMs, fetches, sequence }) {
  const entry = sessions.get(key);
  if (!entry) throw new Error(`model ${key} is not loaded in this page`);
  const tFetch = performance.now();
  const feeds = await inputFeeds(transfer, inputs);
  const inputFetchMs = performance.now() - tFetch;
  const { session } = entry;
  const infer = inference(session, feeds, fetches, sequence);

  let results = null;
  let t0;
  const firstRunThisCall = entry.firstRunMs === undefined;
  if (firstRunThisCall) {
    entry.precompileMs = null;
    if (precompile) {
      t0 = performance.now();
      await infer();
      entry.precompileMs = performance.now() - t0;
    }
    t0 = performance.now();
    results = await infer();
    entry.firstRunMs = performance.now() - t0;
  }
  // Warm up for `warmup` runs and at least `warmupMs`: V8 first runs ORT's wasm as baseline
  // (Liftoff) code and tiers hot functions up to TurboFan in the background, and until that
  // settles timings are bimodal.
  const warmStart = performance.now();
  for (let i = 0; i < warmup || performance.now() - warmStart < (warmupMs ?? 0); i++) {
    results = await infer();
  }
  const runMs = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    results = await infer();
    runMs.push(performance.now() - t0);
  }

  const outputs = [];
  const parts = [];
  let offset = 0;
  for (const name of Object.keys(results)) {
    const tensor = results[name];
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    outputs.push({ name, dtype: tensor.type, dims: tensor.dims.map(Number), byteOffset: offset, byteLength: bytes.byteLength });
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const tPost = performance.now();
  const outputsBase64 = await sendBody(parts, offset, transfer);
  const outputPostMs = performance.now() - tPost;
  const memory = measureMemoryMs ? await measureMemory(measureMemoryMs) : null;
  return {
    precompileMs: entry.precompileMs,
    firstRunMs: entry.firstRunMs,
    firstRunThisCall,
    runMs,
    outputs,
    outputsBase64,
    inputFetchMs,
    outputPostMs,
    memory,
  };
}

// Moves a body host -> page -> host and nothing else: the tensor-transfer benchmark's probe.
export async function echo(transfer) {
  const t0 = performance.now();
  const body = new Uint8Array(await receiveBody(transfer));
  const receiveMs = performance.now() - t0;
  const t1 = performance.now();
  const outputsBase64 = await sendBody([body], body.byteLength, transfer);
  return { receiveMs, sendMs: performance.now() - t1, outputsBase64 };
}

// Downloads a URL as a plain static file: the baseline the transfer benchmark compares with.
export async function download(url) {
  const t0 = performance.now();
  const response = await fetch(url);
  const bytes = (await response.arrayBuffer()).byteLength;
  return { bytes, ms: performance.now() - t0 };
}
