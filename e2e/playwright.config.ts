import { defineConfig } from "@playwright/test";

// Two ways in, the same tests: straight to warden, and through nginx at
// /warden/ (the sub-path a SOC's reverse proxy would use).
const directPort = Number(process.env.E2E_DIRECT_PORT ?? 18181);
const proxyPort = Number(process.env.E2E_PROXY_PORT ?? 18182);
const upstreamPort = Number(process.env.E2E_UPSTREAM_PORT ?? 18183);

export default defineConfig({
  testDir: "tests",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  timeout: 30_000,
  expect: { timeout: 10_000 },
  use: {
    headless: true,
    viewport: { width: 1280, height: 800 },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [
    { name: "direct", use: { baseURL: `http://127.0.0.1:${directPort}/` } },
    { name: "proxy", use: { baseURL: `http://127.0.0.1:${proxyPort}/warden/` } },
  ],
  webServer: [
    {
      command: `./serve.sh direct --listen 127.0.0.1:${directPort}`,
      url: `http://127.0.0.1:${directPort}/api/status`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: "ignore",
      stderr: "pipe",
    },
    {
      command: `./serve.sh proxy --listen 127.0.0.1:${upstreamPort} --public-base-path /warden --trusted-proxy 127.0.0.1`,
      url: `http://127.0.0.1:${upstreamPort}/warden/api/status`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: "ignore",
      stderr: "pipe",
    },
    {
      command: `node nginx/start.mjs ${proxyPort} ${upstreamPort}`,
      url: `http://127.0.0.1:${proxyPort}/warden/api/status`,
      timeout: 60_000,
      reuseExistingServer: false,
    },
  ],
});
