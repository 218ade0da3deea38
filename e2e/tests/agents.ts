// Real simulated agents for the specs that send response actions: each
// test enrolls its own (the e2e server is shared by every spec), runs it
// until the test ends, and fails on any error the app logged meanwhile.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { as, failOnPageErrors } from "./helpers";

// The demo enrollment token that `warden serve --demo` seeds.
const TOKEN = Buffer.from("demo-enrollment:warden-demo-enrollment-secret").toString("base64");
// The simulated agent (`make build` builds it): it runs the actions it is sent.
const AGENT_BIN = path.resolve(__dirname, "../../target/debug/warden-agent");

export type RunningAgent = { id: string; hostname: string; process: ChildProcess; dir: string };
const running: RunningAgent[] = [];

/**
 * Registers the spec's hooks (call once at its top): agents started by a
 * test stop when it ends, and a panic in the app fails the test.
 */
export function useAgents() {
  test.afterEach(() => {
    for (const agent of running.splice(0)) {
      agent.process.kill();
      rmSync(agent.dir, { recursive: true, force: true });
    }
  });
  failOnPageErrors();
}

/**
 * Enrolls a real simulated agent with its own host name (the e2e server is
 * shared by every spec, so each test works on its own agent) and runs it
 * until the test ends; waits until Warden sees it online.
 */
export async function startAgent(request: APIRequestContext, baseURL: string, prefix: string): Promise<RunningAgent> {
  const hostname = `${prefix}-${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(tmpdir(), "warden-e2e-agent-"));
  const state = path.join(dir, "agent.json");
  const url = baseURL.replace(/\/$/, "");
  execFileSync(AGENT_BIN, ["enroll", "--url", url, "--enrollment-token", TOKEN, "--hostname", hostname, "--tags", "e2e", "--state", state], {
    stdio: "pipe",
  });
  const id = JSON.parse(readFileSync(state, "utf8")).agent_id as string;
  const process = spawn(AGENT_BIN, ["run", "--state", state, "--interval", "200ms", "--poll-timeout", "10s"], { stdio: "ignore" });
  const agent = { id, hostname, process, dir };
  running.push(agent);
  await expect
    .poll(async () => {
      const response = await request.get(`api/fleet/agents/${id}`, { headers: as("admin") });
      return response.ok() ? (await response.json()).item?.status : response.status();
    }, { timeout: 20_000 })
    .toBe("online");
  return agent;
}

/** Sends a response action through the API as `username`; answers the action. */
export async function send(request: APIRequestContext, username: string, route: string, data: unknown) {
  const response = await request.post(`api/endpoint/action/${route}`, { headers: as(username), data });
  expect(response.ok(), await response.text()).toBeTruthy();
  return (await response.json()).data as { id: string; status: string };
}
