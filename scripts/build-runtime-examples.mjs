#!/usr/bin/env node
// Builds the image the container and VM examples run: an OCI image layout directory holding a tiny
// Linux image made of Debian's static busybox (`/bin/busybox`, package busybox-static) whose process
// serves HTTP on $PORT (`busybox httpd`, with a shell CGI script that answers and echoes the query
// string). Two gzip layers (busybox and the site), fixed times and owners, so the manifest digest is
// the same on every run with the same busybox and Node. Not part of `npm run build`: the demo stays
// Wasm and a fresh machine needs none of this.
//
//   node scripts/build-runtime-examples.mjs [--out DIR]
//
// Writes DIR/image (default examples/container-hello/image), and ready-to-apply manifests with this
// machine's absolute path of it: DIR/generated/container-hello.yaml (runtimeClassName: container,
// Route /container) and DIR/generated/vm-hello.yaml (runtimeClassName: vm, Route /vm). Prints the
// layout path, then the manifest digest as the last line. Without busybox it says what to install
// and exits 1. SKIFF_BUSYBOX names another static busybox binary.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import tar from 'tar-stream';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outFlag = args.indexOf('--out');
if (args.some((a, i) => a !== '--out' && i !== outFlag + 1) || (outFlag >= 0 && !args[outFlag + 1])) {
  process.stderr.write('usage: node scripts/build-runtime-examples.mjs [--out DIR]\n');
  process.exit(2);
}
const outDir = resolve(outFlag >= 0 ? args[outFlag + 1] : join(root, 'examples', 'container-hello'));
const layoutDir = join(outDir, 'image');
const busyboxPath = process.env.SKIFF_BUSYBOX || '/bin/busybox';

if (!existsSync(busyboxPath) || !statSync(busyboxPath).isFile()) {
  process.stderr.write(`${busyboxPath} not found: the example image is made of Debian's static busybox.\n  apt-get install busybox-static\nthen run this script again.\n`);
  process.exit(1);
}
const busybox = readFileSync(busyboxPath);
if (busybox.subarray(0, 4).toString('latin1') !== '\x7fELF') {
  process.stderr.write(`${busyboxPath} is not an ELF executable; install busybox-static (apt-get install busybox-static)\n`);
  process.exit(1);
}

const ARCH = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }[process.arch] ?? process.arch;
const EPOCH = new Date(0);
const CREATED = EPOCH.toISOString().replace('.000Z', 'Z');
const APPLETS = ['sh', 'ash', 'cat', 'echo', 'env', 'hostname', 'httpd', 'id', 'ls', 'printf', 'ps', 'sleep', 'uname', 'wget'];

// busybox httpd runs a CGI script per request with the request in its environment (QUERY_STRING raw,
// exactly as the client sent it). index.cgi answers a directory URL such as `/`.
const CGI = `#!/bin/sh
# The example's answer: a CGI script busybox httpd runs per request.
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "hello from a container"
echo "query: \${QUERY_STRING}"
echo "method: \${REQUEST_METHOD}"
echo "kernel: $(uname -r)"
`;

/** tarOf packs entries in order with fixed owner and time, so equal input gives equal bytes. */
async function tarOf(entries) {
  const pack = tar.pack();
  const chunks = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const e of entries) {
    const body = e.type === 'file' ? e.content : undefined;
    await new Promise((res, rej) =>
      pack.entry({ name: e.name, type: e.type, mode: e.mode, linkname: e.linkname, size: body?.length ?? 0, mtime: EPOCH, uid: 0, gid: 0, uname: 'root', gname: 'root' }, body ?? Buffer.alloc(0), (err) => (err ? rej(err) : res())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const dir = (name, mode = 0o755) => ({ name, type: 'directory', mode });
const file = (name, content, mode = 0o644) => ({ name, type: 'file', mode, content: Buffer.from(content) });
const link = (name, target) => ({ name, type: 'symlink', mode: 0o777, linkname: target });

const baseLayer = await tarOf([
  ...['bin/', 'dev/', 'etc/', 'proc/', 'root/', 'sys/', 'tmp/', 'www/'].map((d) => dir(d, d === 'tmp/' ? 0o1777 : d === 'root/' ? 0o700 : 0o755)),
  file('bin/busybox', busybox, 0o755),
  ...APPLETS.map((a) => link(`bin/${a}`, 'busybox')),
  file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'),
  file('etc/group', 'root:x:0:\nnogroup:x:65534:\n'),
]);
const siteLayer = await tarOf([dir('www/cgi-bin/'), file('www/cgi-bin/hello', CGI, 0o755), link('www/cgi-bin/index.cgi', 'hello')]);

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobs = new Map();
const put = (bytes) => {
  blobs.set(sha256(bytes), bytes);
  return { digest: sha256(bytes), size: bytes.length };
};

const layers = [baseLayer, siteLayer].map((t) => ({ tar: t, gz: gzipSync(t, { level: 9 }) }));
const config = Buffer.from(
  JSON.stringify({
    created: CREATED,
    architecture: ARCH,
    os: 'linux',
    config: {
      Entrypoint: ['/bin/sh', '-c', 'exec /bin/busybox httpd -f -v -p "${PORT:-8080}" -h /www'],
      Env: ['PATH=/bin'],
      WorkingDir: '/www',
      ExposedPorts: { '8080/tcp': {} },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.tar)) },
    history: [
      { created: CREATED, created_by: `scripts/build-runtime-examples.mjs: busybox from ${busyboxPath}` },
      { created: CREATED, created_by: 'scripts/build-runtime-examples.mjs: /www with a CGI script' },
    ],
  }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(l.gz) })),
    annotations: { 'org.opencontainers.image.title': 'skiff container-hello' },
  }),
);
const manifestDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(manifest) };
const index = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ ...manifestDesc, platform: { architecture: ARCH, os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
};

// Written beside and renamed into place, so a reader never sees a half-written layout.
mkdirSync(outDir, { recursive: true });
const tmp = `${layoutDir}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(join(tmp, 'blobs', 'sha256'), { recursive: true });
for (const [digest, bytes] of blobs) writeFileSync(join(tmp, 'blobs', 'sha256', digest.slice(7)), bytes);
writeFileSync(join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(join(tmp, 'index.json'), JSON.stringify(index));
rmSync(layoutDir, { recursive: true, force: true });
renameSync(tmp, layoutDir);

const generated = join(outDir, 'generated');
mkdirSync(generated, { recursive: true });
const manifestFor = (name, runtimeClassName, prefix) => `# Generated by scripts/build-runtime-examples.mjs with this machine's path of the image.
# skiff up needs --allow-host-dir ${layoutDir} (or a directory above it) to read it.
apiVersion: skiff.dev/v1
kind: Function
metadata:
  name: ${name}
  namespace: default
  labels:
    app: ${name}
spec:
  runtimeClassName: ${runtimeClassName}
  image: ${layoutDir}
  port: 8080
---
apiVersion: skiff.dev/v1
kind: Route
metadata:
  name: ${name}
  namespace: default
spec:
  hosts: ["*"]
  http:
    - match: [{ uri: { prefix: ${prefix} } }]
      rewrite: { uri: /cgi-bin/hello }
      route: [{ destination: { function: ${name} }, weight: 100 }]
`;
writeFileSync(join(generated, 'container-hello.yaml'), manifestFor('container-hello', 'container', '/container'));
writeFileSync(join(generated, 'vm-hello.yaml'), manifestFor('vm-hello', 'vm', '/vm'));

process.stdout.write(`image layout: ${layoutDir}\n`);
process.stdout.write(`manifests:    ${join(generated, 'container-hello.yaml')}\n              ${join(generated, 'vm-hello.yaml')}\n`);
process.stdout.write(`${manifestDesc.digest}\n`);
