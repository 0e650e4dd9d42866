/**
 * @file A minimal static file server on 127.0.0.1 for the browser tests: module scripts need
 * an http origin and a JavaScript MIME type (a `file://` page cannot import modules). Each
 * mount maps a URL prefix to a folder; nothing outside those folders is served.
 */

import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".wasm": "application/wasm",
};

/** A running server: its origin (`http://127.0.0.1:PORT`) and how to stop it. */
export interface StaticServer {
  origin: string;
  close(): Promise<void>;
}

/**
 * Serve folders under URL prefixes, e.g. `{ "/": outDir, "/dist/": distDir }` (the longest
 * matching prefix wins; a folder URL serves its `index.html`). `headers` are added to every
 * response (e.g. the two that make a page cross-origin isolated).
 * @example
 * const server = await serveStatic({ "/": "browser-out" });
 * await page.goto(`${server.origin}/index.html`);
 * await server.close();
 */
export async function serveStatic(
  mounts: Readonly<Record<string, string>>,
  headers: Readonly<Record<string, string>> = {},
): Promise<StaticServer> {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const send = (code: number, body: string | Buffer, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store", ...headers });
      res.end(body);
    };
    if (prefix === undefined) return send(404, "not found");
    const base = mounts[prefix]!;
    let file = normalize(join(base, path.slice(prefix.length)));
    if (file !== base && !file.startsWith(base.endsWith(sep) ? base : base + sep))
      return send(403, "forbidden");
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      send(200, await readFile(file), TYPES[extname(file)] ?? "application/octet-stream");
    } catch {
      send(404, "not found");
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
