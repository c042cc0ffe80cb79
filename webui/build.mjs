// Builds the /verify page's one self-contained script: `node webui/build.mjs` (or `npm run build:verify`).
// The output is committed, so the gateway serves it with no build step; tests/webui/test_build.py
// rebuilds it and fails when the committed file differs from the sources.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = process.argv[2] ?? path.join(root, 'gateway/static/verify/app.js');

await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['webui/src/app.js'],
  outfile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // JSON.parse source access, String.prototype.isWellFormed: current Chromium, Firefox and Safari.
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});
