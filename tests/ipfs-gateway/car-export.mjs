// The gateway's CAR export (`application/vnd.ipld.car; version=1; order=dfs; dups=n`), written
// here rather than with @helia/car. That helper's walker reads one block at a time and its CAR
// writer copies every block on the way, which made the CAR response 0.66-0.80× as fast as the
// same node's path response; a trustless gateway (boxo's, for one) writes CARs itself in just
// this way.
//
// The blocks come from Helia's blockstore, in the order the trustless gateway spec gives for
// `dag-scope=all` with `order=dfs`: depth-first, pre-order, links in the order the node lists
// them. Each block is written once (`dups=n`); identity CIDs carry their bytes inline and are
// walked but not written, as the spec asks. Up to READ_AHEAD sibling blocks are read from disk
// while earlier ones are sent, and the HTTP stream's backpressure is honoured, so memory stays
// at a few blocks per tree level whatever the file's size.

import { once } from 'node:events'
import { varint } from 'multiformats'
import { createUnsafe } from 'multiformats/block'

const DAG_PB = 0x70
const IDENTITY = 0x00
/** Sibling blocks read ahead of the one being written. */
const READ_AHEAD = 8

/** One block's bytes from the blockstore, which streams a block in file-sized chunks. */
async function readBlock (helia, cid, signal) {
  if (cid.multihash.code === IDENTITY) return cid.multihash.digest
  const parts = []
  let length = 0
  for await (const part of helia.blockstore.get(cid, { offline: true, signal })) {
    parts.push(part)
    length += part.byteLength
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, length)
}

/** The blocks under `cid` (whose bytes are already read) in depth-first pre-order. */
async function * depthFirst (helia, cid, bytes, seen, signal) {
  seen.add(cid.toString())
  yield { cid, bytes }
  if (cid.code !== DAG_PB) return
  const block = createUnsafe({ cid, bytes, codec: await helia.getCodec(cid.code) })
  const links = []
  for (const [, link] of block.links()) links.push(link)
  // Reads started ahead, in link order. Blocks are told apart by whole CID, as the client walks
  // by CID; a link already sent (a repeated chunk or subtree) is skipped.
  const pending = []
  let next = 0
  const readAhead = () => {
    while (next < links.length && pending.length < READ_AHEAD) {
      const link = links[next++]
      const key = link.toString()
      const bytes = readBlock(helia, link, signal)
      // Awaited below; this only keeps a read left behind by a walk that stopped early (the
      // client hung up) from crashing the process as an unhandled rejection.
      bytes.catch(() => {})
      pending.push({ link, key, bytes })
    }
  }
  readAhead()
  while (pending.length > 0) {
    const { link, key, bytes } = pending.shift()
    readAhead()
    const got = await bytes
    if (seen.has(key)) continue
    yield * depthFirst(helia, link, got, seen, signal)
  }
}

/** Writes `chunk`, waiting for the socket to drain when Node asks; false if the client left. */
async function send (res, chunk, signal) {
  if (signal.aborted) return false
  if (res.write(chunk)) return true
  try {
    await once(res, 'drain', { signal })
    return true
  } catch {
    return false
  }
}

function frameHead (cid, blockLength) {
  const length = cid.bytes.byteLength + blockLength
  const head = new Uint8Array(varint.encodingLength(length) + cid.bytes.byteLength)
  varint.encodeTo(length, head, 0)
  head.set(cid.bytes, head.byteLength - cid.bytes.byteLength)
  return head
}

/**
 * The CAR v1 header: the DAG-CBOR map {roots: [root], version: 1}. Encoded here because Helia
 * without libp2p (`createHeliaLight`) has no DAG-CBOR codec; the map is fixed apart from the
 * CID, and its keys are in DAG-CBOR's canonical order (shorter first).
 */
function carHeader (root) {
  const cid = new Uint8Array(root.bytes.byteLength + 1) // CBOR tag 42 holds 0x00 + the CID
  cid.set(root.bytes, 1)
  if (cid.byteLength > 255) throw new Error('CID too long for a CAR header')
  const text = s => [...new TextEncoder().encode(s)]
  return Uint8Array.from([
    0xa2, // map of 2
    0x65, ...text('roots'), 0x81, // text(5), array of 1
    0xd8, 0x2a, 0x58, cid.byteLength, ...cid, // tag 42, bytes(n)
    0x67, ...text('version'), 0x01 // text(7), 1
  ])
}

/** Streams the CAR of the DAG under `root` to `res` (headers already sent). */
export async function writeCar (helia, root, res) {
  const controller = new AbortController()
  // A client that hangs up mid-stream (a verifying one that found a bad block) stops the walk.
  res.once('close', () => controller.abort())
  const header = carHeader(root)
  const head = new Uint8Array(varint.encodingLength(header.byteLength))
  varint.encodeTo(header.byteLength, head, 0)
  const { signal } = controller
  if (!(await send(res, head, signal)) || !(await send(res, header, signal))) return
  const seen = new Set()
  const rootBytes = await readBlock(helia, root, signal)
  for await (const { cid, bytes } of depthFirst(helia, root, rootBytes, seen, signal)) {
    if (cid.multihash.code === IDENTITY) continue
    if (!(await send(res, frameHead(cid, bytes.byteLength), signal)) || !(await send(res, bytes, signal))) return
  }
  res.end()
}
