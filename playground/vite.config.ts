/**
 * @file Vite configuration of the playground (`npm run playground` serves it, `npm run
 * playground:build` writes a static site to playground/dist/). `adjoint` resolves to the built
 * package in dist/, as it would for an app that installed it.
 */

import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("..", import.meta.url));

export default defineConfig({
  root: here,
  base: "./",
  resolve: { alias: [{ find: /^adjoint$/, replacement: `${root}dist/index.js` }] },
  server: { fs: { allow: [root] } },
  build: {
    outDir: `${here}dist`,
    emptyOutDir: true,
    target: "es2022",
  },
});
