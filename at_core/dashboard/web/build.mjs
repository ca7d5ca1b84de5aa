// Build the dashboard's static front end into dist/: our plain ES modules as they are,
// and lightweight-charts' self-contained ES module from node_modules (pinned in
// package-lock.json; nothing is fetched at run time, no CDN).
import { cpSync, mkdirSync, rmSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
for (const f of readdirSync(join(here, "src"))) cpSync(join(here, "src", f), join(dist, f));
cpSync(
  join(here, "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs"),
  join(dist, "vendor/lightweight-charts.mjs"),
);
console.log(`built ${dist}`);
