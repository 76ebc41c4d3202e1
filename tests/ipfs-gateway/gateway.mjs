// A real IPFS node for webaccel's tests and benchmark: Helia with no libp2p, no block brokers and
// no routers (`createHeliaLight`), so it never reaches the network. Its blocks live in a
// filesystem blockstore that `add` fills and `serve` reads.
//
//   node gateway.mjs add   --blocks DIR [--chunk-size N] [--max-children N] FILE...
//       imports each file with @helia/unixfs (CIDv1, raw leaves, fixed-size chunks, balanced
//       layout) and prints one JSON line per file: {"file": ..., "cid": ..., "bytes": ...}
//   node gateway.mjs serve --blocks DIR
//       serves the trustless gateway responses on 127.0.0.1 (a free port) and prints
//       {"port": N} once listening; exits when its stdin closes, so it never outlives the
//       test harness that started it.
//
// Responses, for GET /ipfs/{cid}:
//   ?format=car or Accept: application/vnd.ipld.car  -> a CAR v1 of the whole DAG, depth-first,
//                                                       each block once (car-export.mjs)
//   ?format=raw or Accept: application/vnd.ipld.raw  -> the single block
//   otherwise                                         -> the file's bytes (a plain path fetch)
// A CID whose root block the node lacks is a 404, as the trustless gateway spec asks.

import { createServer } from 'node:http'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createHeliaLight } from 'helia'
import { unixfs } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { writeCar } from './car-export.mjs'

function parseArgs (argv) {
  const opts = { files: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--blocks') opts.blocks = argv[++i]
    else if (a === '--chunk-size') opts.chunkSize = Number(argv[++i])
    else if (a === '--max-children') opts.maxChildren = Number(argv[++i])
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`)
    else opts.files.push(a)
  }
  if (opts.blocks == null) throw new Error('--blocks DIR is required')
  return opts
}

async function node (blocksDir) {
  const blockstore = new FsBlockstore(blocksDir)
  const helia = createHeliaLight({ blockstore, datastore: new MemoryDatastore() })
  await helia.start()
  return helia
}

async function add (opts) {
  const helia = await node(opts.blocks)
  const fs = unixfs(helia)
  // The settings are explicit rather than Helia's defaults, so the test compares like with like.
  const settings = {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: opts.chunkSize ?? 1048576 }),
    layout: balanced({ maxChildrenPerNode: opts.maxChildren ?? 1024 })
  }
  for (const file of opts.files) {
    const content = createReadStream(file)
    const cid = await fs.addByteStream(content, settings)
    const { size } = await stat(file)
    process.stdout.write(JSON.stringify({ file, cid: cid.toString(), bytes: size }) + '\n')
  }
  await helia.stop()
}

function wants (req, url, format, mime) {
  if (url.searchParams.get('format') === format) return true
  return (req.headers.accept ?? '').split(',').some(t => t.trim().split(';')[0].trim() === mime)
}

async function serve (opts) {
  const helia = await node(opts.blocks)
  const fs = unixfs(helia)

  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1')
      const m = /^\/ipfs\/([^/]+)$/.exec(url.pathname)
      if (req.method !== 'GET' || m == null) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('only GET /ipfs/{cid} is served here\n')
        return
      }
      let cid
      try {
        cid = CID.parse(m[1])
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`invalid CID: ${e.message}\n`)
        return
      }
      if (!(await helia.blockstore.has(cid))) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`${cid} is not in this node\n`)
        return
      }
      if (wants(req, url, 'car', 'application/vnd.ipld.car')) {
        res.writeHead(200, {
          'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n',
          'content-disposition': `attachment; filename="${cid}.car"`
        })
        await writeCar(helia, cid, res)
      } else if (wants(req, url, 'raw', 'application/vnd.ipld.raw')) {
        res.writeHead(200, {
          'content-type': 'application/vnd.ipld.raw',
          'content-disposition': `attachment; filename="${cid}.bin"`
        })
        for await (const chunk of helia.blockstore.get(cid)) res.write(chunk)
        res.end()
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        for await (const chunk of fs.cat(cid, { offline: true })) {
          if (!res.write(chunk)) await new Promise(resolve => res.once('drain', resolve))
        }
        res.end()
      }
    } catch (e) {
      // Headers may be out already (a stream that failed midway): then all we can do is cut
      // the response short, which a verifying client sees as truncation.
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`)
      else res.destroy(e)
    }
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
  })
  process.stdin.resume()
  process.stdin.on('end', async () => {
    server.close()
    await helia.stop()
    process.exit(0)
  })
}

const [mode, ...rest] = process.argv.slice(2)
try {
  const opts = parseArgs(rest)
  if (mode === 'add') await add(opts)
  else if (mode === 'serve') await serve(opts)
  else throw new Error('usage: gateway.mjs add|serve --blocks DIR [...]')
} catch (e) {
  process.stderr.write(`gateway.mjs: ${e.message}\n`)
  process.exit(2)
}
