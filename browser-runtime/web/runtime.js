// webaccel's in-page runtime. The host (Rust, over CDP) imports this module into a page served
// from the loopback asset server, then calls its exports. It loads, runs and times models with
// onnxruntime-web, and reports what the browser can do. Nothing here invents a number: a value
// the browser cannot give is returned as null, together with the error it raised.
//
// The host drives the page over CDP or WebDriver BiDi (import, configure, load, capabilities), but runs
// travel over a data channel: a WebSocket to the asset server carrying binary frames, so that
// tensors never become JSON numbers or base64 text, and a run costs one loopback round trip.

// onnxruntime-web ships several builds of its wasm core. The one behind `ort.all` carries the
// WebGPU and WebNN execution providers, and to let their asynchronous kernels suspend the
// wasm, its functions are Asyncify-instrumented (28 MB against the plain build's 14 MB).
// Measured side by side on MiniLM after 20 warm-up runs, the wasm EP had the same median in
// both but a p90 of 2.1x the median in `ort.all` against 1.2x in the plain build behind
// `ort.wasm`: the bigger module takes longer to tier up. So each platform gets the build made
// for it: wasm sessions the plain one, webgpu and webnn sessions `ort.all`, except that a
// decoder with a KV cache on webgpu (a session loaded with gpuOutputs) goes to `ort.webgpu`,
// whose WebGPU execution provider is onnxruntime's C++ one (`ort.all` carries the older
// JavaScript one, JSEP). Measured side by side on SmolLM2's fp32 decoder, 6 greedy tokens
// twice: 10.6 s a token against JSEP's 27.8 on Chromium's SwiftShader adapter, 8.3 against
// 17.1 on Firefox's lavapipe, the same tokens. It is not the default because it got Silero
// VAD wrong on both adapters (cosine 0.90 and max |error| 0.18 against native onnxruntime,
// where JSEP matches). The builds are separate module instances with separate wasm heaps,
// each loaded on first use.
const BUILDS = { wasm: './ort/ort.wasm.min.mjs', all: './ort/ort.all.min.mjs', webgpu: './ort/ort.webgpu.min.mjs' };
const builds = new Map();
let settings = null;

// onnxruntime-web prints a session's profile through console.log, which its wasm module binds
// when it loads. So a forwarding console.log is in place before any build is imported, and a
// profile can be captured from what it prints.
// Its session logging (where the graph's nodes were placed) goes through console.log and,
// from the wasm module's stderr, console.error/warn; all of them are captured the same way.
let captured = null;
for (const method of ['log', 'info', 'warn', 'error']) {
  const original = console[method];
  console[method] = (...args) => (captured ? captured.push(args.join(' ')) : original.apply(console, args));
}

// Runs `work` with the console captured; returns its result and the lines printed meanwhile.
async function capturing(work) {
  captured = [];
  try {
    const result = await work();
    return { result, lines: captured };
  } finally {
    captured = null;
  }
}

const sessions = new Map();

function errorText(e) {
  if (e === undefined || e === null) return 'unknown error';
  if (typeof e === 'string') return e;
  return e.name ? `${e.name}: ${e.message}` : String(e.message ?? e);
}

// ORT fixes its wasm settings at a build's first session, so they are kept here and applied
// to each build as it is first imported.
export function configure({ wasmPaths, numThreads, logLevel }) {
  if (settings) return { alreadyConfigured: true, ...settings };
  settings = { wasmPaths, numThreads, logLevel: logLevel ?? 'warning' };
  return settings;
}

// The onnxruntime-web module a platform's sessions run in.
async function ortFor(platform, kvCache) {
  const build = platform === 'wasm' ? 'wasm' : platform === 'webgpu' && kvCache ? 'webgpu' : 'all';
  if (!builds.has(build)) {
    builds.set(
      build,
      import(BUILDS[build]).then((ort) => {
        ort.env.wasm.wasmPaths = settings.wasmPaths;
        ort.env.wasm.numThreads = settings.numThreads;
        ort.env.logLevel = settings.logLevel;
        return ort;
      }),
    );
  }
  return builds.get(build);
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

// The fixed cost of one WebNN inference in this browser, before any model: a one-element graph
// (x + x) run the way ORT's webnn EP runs a session (write the input tensor, dispatch, read
// the output back), timed `runs` times after `warmup`. A model's WebNN latency cannot go below
// it, whatever the graph.
export async function webnnFloor({ deviceType, warmup, runs }) {
  const context = await navigator.ml.createContext({ deviceType });
  try {
    const desc = { dataType: 'float32', shape: [1] };
    const builder = new MLGraphBuilder(context);
    const x = builder.input('x', desc);
    const graph = await builder.build({ y: builder.add(x, x) });
    const input = await context.createTensor({ ...desc, writable: true });
    const output = await context.createTensor({ ...desc, readable: true });
    const value = new Float32Array([1]);
    const once = async () => {
      context.writeTensor(input, value);
      context.dispatch(graph, { x: input }, { y: output });
      const y = new Float32Array(await context.readTensor(output));
      if (y[0] !== 2) throw new Error(`WebNN computed 1 + 1 = ${y[0]}`);
    };
    for (let i = 0; i < warmup; i++) await once();
    const runMs = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await once();
      runMs.push(performance.now() - t0);
    }
    return runMs;
  } finally {
    context.destroy?.();
  }
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

// A session that was already loaded reports no creation time: that was measured by an earlier
// call, and this call did not create anything.
function loaded(session, sessionCreateMs, cached, placement, modelFetchMs) {
  return {
    cached,
    sessionCreateMs: cached ? null : sessionCreateMs,
    modelFetchMs: cached ? null : modelFetchMs,
    placement: placement ?? null,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputs: inputMetadata(session),
  };
}

// Where ORT placed the graph's nodes, from the placement report its session logging prints at
// verbose level: "All nodes placed on [EP]. Number of nodes: N", or one "Node(s) placed on
// [EP]. Number of nodes: N" per provider. Null when the build printed none.
function nodePlacement(lines) {
  const placed = {};
  for (const line of lines) {
    const m = /(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (m) placed[m[1]] = (placed[m[1]] ?? 0) + Number(m[2]);
  }
  return Object.keys(placed).length ? placed : null;
}

// Runs log at ORT-web's default level, whatever a session was created with.
const RUN_OPTIONS = { logSeverityLevel: 2 };

// Loads a model into an InferenceSession and keeps it under `key` for later runs. With
// `placement`, a probe session is created first with verbose logging, to read where ORT places
// the graph's nodes, and released; the session that is timed and run is created apart from it
// at ORT's usual log level. (A session created verbose ran MiniLM on wasm 12% slower here, every
// run, so the measured session is never the verbose one.)
export async function load(key, { modelUrl, platform, device, freeDimensionOverrides, profile, placement: wanted, gpuOutputs }) {
  const existing = sessions.get(key);
  if (existing) return loaded(existing.session, existing.sessionCreateMs, true, existing.placement, null);
  const options = {
    executionProviders: executionProviders(platform, device),
    graphOptimizationLevel: 'all',
    enableProfiling: profile === true,
  };
  if (freeDimensionOverrides) options.freeDimensionOverrides = freeDimensionOverrides;
  // Outputs that stay in GPU buffers (a decoder's KV cache on webgpu): fed back as inputs
  // without a round trip through the page's memory.
  if (gpuOutputs) options.preferredOutputLocation = Object.fromEntries(gpuOutputs.map((n) => [n, 'gpu-buffer']));
  const ort = await ortFor(platform, Boolean(gpuOutputs));
  // The model's delivery to the page, on its own: over loopback here, over the network to a
  // remote browser. The sessions are then created from the bytes, so it travels once.
  let t0 = performance.now();
  const response = await fetch(modelUrl);
  if (!response.ok) throw new Error(`GET ${modelUrl} gave HTTP ${response.status}`);
  const model = new Uint8Array(await response.arrayBuffer());
  const modelFetchMs = performance.now() - t0;
  let placement = null;
  if (wanted === true) {
    const probe = await capturing(() => ort.InferenceSession.create(model, { ...options, enableProfiling: false, logSeverityLevel: 0 }));
    placement = nodePlacement(probe.lines);
    await probe.result.release();
  }
  t0 = performance.now();
  const session = await ort.InferenceSession.create(model, options);
  const sessionCreateMs = performance.now() - t0;
  sessions.set(key, { session, sessionCreateMs, ort, profile: profile === true, placement });
  return loaded(session, sessionCreateMs, false, placement, modelFetchMs);
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

// Views each input in place in the request's body (the host aligns every tensor in it).
function inputFeeds(ort, body, inputs) {
  const feeds = {};
  for (const { name, dtype, dims, byteOffset, byteLength } of inputs) {
    const Typed = TYPED[dtype];
    if (!Typed) throw new Error(`input ${name}: unsupported dtype ${dtype}`);
    const data = new Typed(body.buffer, body.byteOffset + byteOffset, byteLength / Typed.BYTES_PER_ELEMENT);
    feeds[name] = new ort.Tensor(dtype, data, dims);
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

// Ends a profiled session's profiling and sums ORT's per-node kernel times by operator type
// over the last `runs` model runs (the timed ones), as milliseconds per run. ORT profiles a
// session from its creation and prints the whole profile once, so a session gives one profile.
// Kernel times are CPU-side: on webgpu they are dispatch times, and WebNN runs its whole graph
// as one node.
const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan']);

// A recurrent model's run is `steps` session runs (one per frame), so its kernel times are
// summed over a whole run, the unit its latency is measured in.
async function opTimes(session, runs, steps) {
  const { lines } = await capturing(() => session.endProfiling());
  const events = [];
  for (const line of lines) {
    const text = line.trim().replace(/,$/, '');
    if (!text.startsWith('{')) continue;
    try {
      events.push(JSON.parse(text));
    } catch {
      // Not an event: ORT prints the brackets of its JSON array on their own lines.
    }
  }
  const modelRuns = events
    .filter((e) => e.cat === 'Session' && e.name === 'model_run')
    .sort((a, b) => a.ts - b.ts)
    .slice(-Math.max(runs, 1) * steps);
  if (modelRuns.length === 0) throw new Error('onnxruntime-web printed no profile for this session');
  const from = modelRuns[0].ts;
  const perRun = modelRuns.length / steps;
  const byOp = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
    const op = e.args?.op_name ?? e.name;
    // A control-flow node's time is its subgraph's, whose nodes are profiled one by one too:
    // counting both would count that time twice (Silero's If was two thirds of "all kernels").
    if (CONTROL_FLOW.has(op)) continue;
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
  }
  return [...byOp]
    .map(([op, us]) => ({ op, ms: us / 1000 / perRun }))
    .sort((a, b) => b.ms - a.ms);
}

// One inference as a function: a plain session.run, or, for a recurrent model, a walk over
// the rows of `sequence.over` that feeds the outputs named in `sequence.carry` back in as
// inputs and stacks each step's fetched outputs. Carried state starts from the given feeds on
// every call, so each timed run processes the same sequence from the same start.
function inference(ort, session, feeds, fetches, sequence) {
  const names = fetches ?? session.outputNames;
  if (!sequence) return () => session.run(feeds, names, RUN_OPTIONS);
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
      out = await session.run(stepFeeds, undefined, RUN_OPTIONS);
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

// The token choice of the host's webaccel_tensor::generation, step for step: greedy takes the
// highest logit (the lowest id on a tie); sampling keeps the top_k highest (ties by id; 0: all),
// and walks them in id order against a mulberry32 draw, with weights in doubles.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function choose(logits, offset, vocab, sampling, draw) {
  if (!sampling || !(sampling.temperature > 0)) {
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[offset + i] > logits[offset + best]) best = i;
    return best;
  }
  const row = logits.subarray(offset, offset + vocab);
  let candidates;
  if (sampling.topK > 0 && sampling.topK < vocab) {
    const sorted = Float32Array.from(row).sort();
    const threshold = sorted[vocab - sampling.topK];
    let atThreshold = sampling.topK - [...sorted.subarray(vocab - sampling.topK)].filter((v) => v > threshold).length;
    candidates = [];
    for (let i = 0; i < vocab; i++) {
      if (row[i] > threshold) candidates.push(i);
      else if (row[i] === threshold && atThreshold > 0) {
        candidates.push(i);
        atThreshold--;
      }
    }
  } else {
    candidates = Array.from({ length: vocab }, (_, i) => i);
  }
  let top = -Infinity;
  for (const i of candidates) top = Math.max(top, row[i]);
  const weights = candidates.map((i) => Math.exp((row[i] - top) / sampling.temperature));
  let left = draw() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < candidates.length; j++) {
    left -= weights[j];
    if (left < 0) return candidates[j];
  }
  return candidates[candidates.length - 1];
}

const ids = (ort, values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

// Sets the suppressed ids' logits to -Infinity before the index-th generated token is chosen,
// as webaccel_tensor's Generation::mask_suppressed does.
function maskSuppressed(logits, offset, { suppress, suppressFirst }, index) {
  for (const id of suppress ?? []) logits[offset + id] = -Infinity;
  if (index === 0) for (const id of suppressFirst ?? []) logits[offset + id] = -Infinity;
}

// One whole generation as one inference: the prompt's forward pass (prefill), then a token at a
// time, the KV cache (present.* -> past_key_values.*) kept in the session's outputs between
// steps: in GPU buffers when the session was loaded with gpuOutputs. `extra` (an encoder's
// outputs) is fed to every step. Returns the sample (tokens and times from its start).
async function generateOnce(ort, session, generation, extra) {
  const { prompt, maxNewTokens, stop, layers, kvHeads, headDim, sampling } = generation;
  const carried = (out) => Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat().map((n) => out[n]);
  const draw = mulberry32(sampling?.seed ?? 0);
  const feeds = { ...extra, input_ids: ids(ort, prompt, [1, prompt.length]), attention_mask: ids(ort, prompt.map(() => 1), [1, prompt.length]), position_ids: ids(ort, prompt.map((_, i) => i), [1, prompt.length]) };
  for (let i = 0; i < layers; i++) {
    for (const kind of ['key', 'value']) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  }
  const t0 = performance.now();
  let out = await session.run(feeds, undefined, RUN_OPTIONS);
  const prefillMs = performance.now() - t0;
  const tokens = [];
  const tokenAtMs = [];
  let total = prompt.length;
  for (;;) {
    const [, steps, vocab] = out.logits.dims;
    const offset = (steps - 1) * vocab;
    maskSuppressed(out.logits.data, offset, generation, tokens.length);
    const token = choose(out.logits.data, offset, vocab, sampling, draw);
    tokens.push(token);
    tokenAtMs.push(performance.now() - t0);
    if (stop.includes(token) || tokens.length >= maxNewTokens) break;
    const next = { ...extra, input_ids: ids(ort, [token], [1, 1]), attention_mask: ids(ort, new Array(total + 1).fill(1), [1, total + 1]), position_ids: ids(ort, [total], [1, 1]) };
    for (let i = 0; i < layers; i++) {
      next[`past_key_values.${i}.key`] = out[`present.${i}.key`];
      next[`past_key_values.${i}.value`] = out[`present.${i}.value`];
    }
    const previous = out;
    out = await session.run(next, undefined, RUN_OPTIONS);
    // The cache just consumed is garbage now; GPU buffers are not collected on their own.
    for (const t of carried(previous)) t.dispose?.();
    total += 1;
  }
  for (const t of carried(out)) t.dispose?.();
  return { tokens, prefillMs, tokenAtMs, encoderMs: null };
}

// A generation model's inference: one generation, or for an encoder-decoder model (`encoder`, a
// loaded session) one per chunk of the encoder's input (its first dimension counts chunks), each
// after the encoder's run on that chunk, whose outputs (kept on the GPU where the encoder was
// loaded with gpuOutputs) feed every decoder step. Each call records its samples (one per chunk)
// in `samples`; its result is all the generated ids [1, N].
function generator(ort, session, generation, encoder, feeds) {
  const samples = [];
  const generate = async () => {
    const made = [];
    if (!encoder) {
      made.push(await generateOnce(ort, session, generation, {}));
    } else {
      const name = generation.encoderInput;
      const features = feeds[name];
      if (!features) throw new Error(`the encoder's input ${name} is not among the inputs`);
      const [chunks, ...rest] = features.dims;
      const size = rest.reduce((a, b) => a * b, 1);
      for (let c = 0; c < chunks; c++) {
        const chunk = new ort.Tensor(features.type, features.data.subarray(c * size, (c + 1) * size), [1, ...rest]);
        const t0 = performance.now();
        const encoded = await encoder.session.run({ [name]: chunk }, undefined, RUN_OPTIONS);
        const encoderMs = performance.now() - t0;
        const sample = await generateOnce(ort, session, generation, encoded);
        for (const t of Object.values(encoded)) t.dispose?.();
        made.push({ ...sample, encoderMs });
      }
    }
    samples.push(made);
    return { tokens: ids(ort, made.flatMap((s) => s.tokens), [1, made.reduce((n, s) => n + s.tokens.length, 0)]) };
  };
  generate.samples = samples;
  return generate;
}

// Runs a loaded model. On a session's first call, `precompile` first makes one warm-up run
// (shader compilation, first allocations: the cold cost, reported as precompileMs); then the
// session's first run is timed on its own. A later call on the same session makes neither, so it
// reports both as null: a figure is this call's or none. Then untimed warm-up runs (`warmup` of
// them, for at least `warmupMs`) and `runs` timed runs. The outputs of the last run form the
// reply's body.
//
// The whole call must end within `limitMs`: once the warm-up shows what a run costs, a request
// that cannot finish in time is refused with what it would need, and a call that overruns
// anyway stops, instead of running on until the host gives the browser up as hung.
async function run(args, body) {
  try {
    return await runLoaded(args, body);
  } catch (e) {
    if (BROKEN_RUN.test(errorText(e))) forget(args.key);
    throw e;
  }
}

// A session whose run failed inside onnxruntime's wasm (not a bad feed, which ORT's JavaScript
// refuses before running) is released and forgotten, so that the next call loads it afresh:
// after such a failure ORT-web's WebGPU session was left unusable here (the next run on it
// never returned, and the call waited out its run limit).
const BROKEN_RUN = /failed to call OrtRun|RuntimeError/;

function forget(key) {
  const entry = sessions.get(key);
  if (!entry) return;
  sessions.delete(key);
  entry.session.release().catch(() => {});
}

async function runLoaded({ key, inputs, warmup, warmupMs, runs, precompile, measureMemoryMs, fetches, sequence, generation, encoder: encoderKey, limitMs }, body) {
  const entry = sessions.get(key);
  if (!entry) throw new Error(`model ${key} is not loaded in this page`);
  const { session, ort } = entry;
  const encoder = encoderKey ? sessions.get(encoderKey) : null;
  if (encoderKey && !encoder) throw new Error(`encoder ${encoderKey} is not loaded in this page`);
  const feeds = inputFeeds(ort, body, inputs);
  const infer = generation ? generator(ort, session, generation, encoder, feeds) : inference(ort, session, feeds, fetches, sequence);
  const started = performance.now();
  const limit = limitMs ?? Infinity;
  const overrun = (what) => {
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    return new Error(`the run limit of ${(limit / 1000).toFixed(0)} s was reached after ${seconds} s, ${what}; ask for fewer runs or a shorter warm-up`);
  };

  let results = null;
  let t0;
  let precompileMs = null;
  let firstRunMs = null;
  const firstRunThisCall = entry.ran !== true;
  if (firstRunThisCall) {
    entry.ran = true;
    if (precompile) {
      t0 = performance.now();
      await infer();
      precompileMs = performance.now() - t0;
    }
    t0 = performance.now();
    results = await infer();
    firstRunMs = performance.now() - t0;
  }
  // Warm up for `warmup` runs and at least `warmupMs`: V8 first runs ORT's wasm as baseline
  // (Liftoff) code and tiers hot functions up to TurboFan in the background, and until that
  // settles timings are bimodal.
  const warmStart = performance.now();
  let warmupRuns = 0;
  while (warmupRuns < warmup || performance.now() - warmStart < (warmupMs ?? 0)) {
    results = await infer();
    warmupRuns++;
    if (performance.now() - started > limit) throw overrun(`during the warm-up (${warmupRuns} runs)`);
  }
  const warmupMsTaken = performance.now() - warmStart;
  const perRun = warmupRuns > 0 ? warmupMsTaken / warmupRuns : firstRunMs ?? 0;
  const needed = performance.now() - started + perRun * runs;
  if (needed > limit) {
    throw overrun(`and ${runs} runs at about ${perRun.toFixed(1)} ms each would need ${(needed / 1000).toFixed(0)} s`);
  }
  const runMs = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    results = await infer();
    runMs.push(performance.now() - t0);
    if (performance.now() - started > limit) throw overrun(`after ${i + 1} of ${runs} timed runs`);
  }
  if (results === null) results = await infer();

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
  const memory = measureMemoryMs ? await measureMemory(measureMemoryMs) : null;
  // Session runs per inference: a sequence's steps; a generation's prefill and one per token after the first.
  const steps = sequence ? feeds[sequence.over].dims[0] : generation ? infer.samples.at(-1).reduce((n, s) => n + s.tokens.length, 0) : 1;
  const opProfile = entry.profile ? await opTimes(session, runs, steps) : null;
  const result = {
    opProfile,
    precompileMs,
    firstRunMs,
    firstRunThisCall,
    warmupRuns,
    warmupMs: warmupMsTaken,
    runMs,
    outputs,
    memory,
    // A generation's own times, for the timed runs (the last call's alone when none was timed).
    generation: generation ? infer.samples.slice(-Math.max(runs, 1)).flat() : null,
  };
  return { result, parts };
}

// Moves a body host -> page -> host and nothing else: the tensor-transfer benchmark's probe.
// The body arrived whole with the request; it goes back as the reply's body.
async function echo(_args, body) {
  return { result: {}, parts: [body] };
}

// The data channel. A frame: the header's length (u32, little-endian), the header as JSON,
// then the body. Requests are {id, method, args, transfer}, replies {id, result, posted} or
// {id, error}. Bodies over transfer.largeBody go as HTTP bodies instead (Chromium moves large
// WebSocket messages at a fraction of the speed): a large input is fetched from
// transfer.inputsUrl, a large reply is POSTed to transfer.outputUrl.
const METHODS = { run, echo };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// `path` is relative to the page; the socket takes the page's own scheme (wss for a page served
// over TLS to a remote browser).
export function connect(path) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => resolve(true);
    socket.onerror = () => reject(new Error(`the data channel ${url} did not open`));
    socket.onmessage = (event) => answer(socket, event.data);
  });
}

async function requestBody(frame, offset, { inputsUrl }) {
  if (!inputsUrl) return new Uint8Array(frame, offset);
  const response = await fetch(inputsUrl);
  if (!response.ok) throw new Error(`GET ${inputsUrl} gave HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function answer(socket, frame) {
  const received = performance.now();
  const headerLength = new DataView(frame).getUint32(0, true);
  let id = null;
  let reply;
  try {
    const header = JSON.parse(decoder.decode(new Uint8Array(frame, 4, headerLength)));
    id = header.id;
    const method = METHODS[header.method];
    if (!method) throw new Error(`unknown method ${header.method}`);
    const body = await requestBody(frame, 4 + headerLength, header.transfer);
    const { result, parts } = await method(header.args, body);
    const size = parts.reduce((n, p) => n + p.byteLength, 0);
    const posted = size > header.transfer.largeBody;
    if (posted) {
      const { outputUrl } = header.transfer;
      const response = await fetch(outputUrl, { method: 'POST', body: new Blob(parts) });
      if (!response.ok) throw new Error(`POST ${outputUrl} gave HTTP ${response.status}`);
    }
    // Everything in the page from the request's arrival to the reply's departure except the
    // final JSON and copy, which are small against a run and bounded by the reply's size.
    result.pageMs = performance.now() - received;
    reply = encodeFrame({ id, result, posted }, posted ? [] : parts);
  } catch (e) {
    reply = encodeFrame({ id, error: errorText(e) }, []);
  }
  socket.send(reply);
}

function encodeFrame(header, parts) {
  const head = encoder.encode(JSON.stringify(header));
  const total = 4 + head.byteLength + parts.reduce((n, p) => n + p.byteLength, 0);
  const frame = new Uint8Array(total);
  new DataView(frame.buffer).setUint32(0, head.byteLength, true);
  frame.set(head, 4);
  let at = 4 + head.byteLength;
  for (const p of parts) {
    frame.set(p, at);
    at += p.byteLength;
  }
  return frame.buffer;
}

// Downloads a URL as a plain static file: the baseline the transfer benchmark compares with.
export async function download(url) {
  const t0 = performance.now();
  const response = await fetch(url);
  const bytes = (await response.arrayBuffer()).byteLength;
  return { bytes, ms: performance.now() - t0 };
}
