/**
 * @file `node:url`'s two path helpers for the browser run of the test suite. The examples the
 * tests import check `import.meta.url === pathToFileURL(process.argv[1]).href` to run their
 * `main()` only as scripts; in the bundle `process.argv` is `[]`, so the check is false, but the
 * module must still load. These convert between `file:` URLs and POSIX paths as Node does.
 */

/**
 * The `file:` URL of an absolute POSIX path (each segment percent-encoded).
 * @example
 * pathToFileURL("/a b/c.ts").href; // "file:///a%20b/c.ts"
 */
export function pathToFileURL(path: string): URL {
  return new URL(`file://${path.split("/").map(encodeURIComponent).join("/")}`);
}

/**
 * The POSIX path of a `file:` URL.
 * @example
 * fileURLToPath("file:///a%20b/c.ts"); // "/a b/c.ts"
 */
export function fileURLToPath(url: string | URL): string {
  const u = typeof url === "string" ? new URL(url) : url;
  if (u.protocol !== "file:") throw new TypeError(`The URL must be of scheme file: ${u.href}`);
  return decodeURIComponent(u.pathname);
}
