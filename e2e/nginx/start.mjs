// Starts nginx in the foreground with the template filled in; Playwright's
// webServer waits for it to answer and stops it after the run.
import { mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [port, upstream] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(here, "..", ".run", "nginx");
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const conf = readFileSync(resolve(here, "warden.conf.template"), "utf8")
  .replaceAll("__DIR__", dir)
  .replaceAll("__PORT__", port)
  .replaceAll("__UPSTREAM__", upstream);
writeFileSync(resolve(dir, "nginx.conf"), conf);

const nginx = spawn("nginx", ["-p", dir, "-e", resolve(dir, "error.log"), "-c", resolve(dir, "nginx.conf"), "-g", "daemon off;"], {
  stdio: "inherit",
  env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => nginx.kill("SIGQUIT"));
nginx.on("exit", (code) => process.exit(code ?? 0));
