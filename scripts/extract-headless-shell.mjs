// Unpacks the Chromium build shipped in npm @sparticuz/chromium (brotli-compressed) into
// <dest>: the `chromium` executable and SwiftShader's Vulkan/GL libraries it loads for WebGPU.
// This build's WebNN works (LiteRT backend), unlike Debian's Chromium. Skips the work when
// <dest> already holds this package version; unpacks beside it and renames, so a reader never
// sees a half-written binary.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = join(root, 'node_modules', '@sparticuz', 'chromium');
const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
const dest = process.argv[2];
if (!dest) {
  console.error('usage: extract-headless-shell.mjs DEST_DIR');
  process.exit(2);
}
const stamp = join(dest, '.version');
if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === version && existsSync(join(dest, 'chromium'))) {
  process.exit(0);
}
const staging = `${dest}.staging-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
const unbrotli = (name) => brotliDecompressSync(readFileSync(join(pkgDir, 'bin', name)));
writeFileSync(join(staging, 'chromium'), unbrotli('chromium.br'), { mode: 0o755 });
writeFileSync(join(staging, 'swiftshader.tar'), unbrotli('swiftshader.tar.br'));
execFileSync('tar', ['-xf', 'swiftshader.tar'], { cwd: staging });
rmSync(join(staging, 'swiftshader.tar'));
writeFileSync(join(staging, '.version'), `${version}\n`);
rmSync(dest, { recursive: true, force: true });
mkdirSync(dirname(dest), { recursive: true });
renameSync(staging, dest);
console.log(`setup: headless-shell (Chromium from @sparticuz/chromium ${version}) unpacked in ${dest}`);
