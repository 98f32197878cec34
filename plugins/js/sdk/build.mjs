// Builds a wasp JS/TS plugin into a WebAssembly component. Written into
// `.wasp/` by `wasp plugin build`, which runs it as
//   node .wasp/build.mjs <entry> <world> <wit dir> <out.wasm>
// 1. esbuild bundles the entry (TypeScript or JavaScript, with its imports
//    and npm dependencies) into one ES module; `wasp:*` imports stay imports.
// 2. componentize-js (through its JavaScript API) turns the module into a
//    component of the given world; HTTP support is left out (plugins have no
//    network).
import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

const [entry, world, wit, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build.mjs <entry> <world> <wit dir> <out.wasm>");
  process.exit(2);
}
const bundle = join(dirname(out), "bundle.js");
await mkdir(dirname(out), { recursive: true });
await build({
  entryPoints: [entry],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["wasp:*"],
  outfile: bundle,
  logLevel: "warning",
});
const { component } = await componentize({
  sourcePath: bundle,
  witPath: wit,
  worldName: world,
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
console.log(`wrote ${out} (${(component.length / 1048576).toFixed(1)} MiB)`);
