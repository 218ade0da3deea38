import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { as, expectAccessible, screenshot, signedIn } from "./helpers";

// The demo enrollment token that `warden serve --demo` seeds.
const TOKEN = Buffer.from("demo-enrollment:warden-demo-enrollment-secret").toString("base64");

/** Enrolls an agent through the Fleet Server API, as warden-agent does. */
async function enroll(request: APIRequestContext, hostname: string) {
  const response = await request.post("api/fleet/agents/enroll", {
    headers: { Authorization: `ApiKey ${TOKEN}` },
    data: { type: "PERMANENT", metadata: { local: { host: { hostname }, elastic: { agent: { version: "8.15.2" } } }, tags: ["e2e"] } },
  });
  expect(response.ok()).toBeTruthy();
  const body = await response.json();
  const agent = { id: body.item.id as string, key: body.item.access_api_key as string };
  const auth = { Authorization: `ApiKey ${agent.key}` };
  const checkin = await request.post(`api/fleet/agents/${agent.id}/checkin`, { headers: auth, data: { status: "online", message: "Running", poll_timeout: "0s" } });
  expect(checkin.ok()).toBeTruthy();
  return { ...agent, auth };
}

async function finalMessage(request: APIRequestContext, agent: { id: string; auth: Record<string, string> }, reason: string) {
  const response = await request.post(`api/fleet/agents/${agent.id}/audit/unenroll`, {
    headers: agent.auth,
    data: { reason, timestamp: new Date().toISOString() },
  });
  expect(response.status()).toBe(200);
}

test("the fleet view tells uninstalled and detached endpoints apart from offline, and the chips filter", async ({ page, request }, testInfo) => {
  const suffix = testInfo.project.name;
  const gone = await enroll(request, `gone-${suffix}`);
  const detached = await enroll(request, `detached-${suffix}`);
  await enroll(request, `healthy-${suffix}`);
  await finalMessage(request, gone, "uninstall");
  await finalMessage(request, detached, "orphaned");

  await signedIn(page, "viewer");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  const table = page.getByTestId("agents");
  await expect(table.getByRole("row", { name: new RegExp(`gone-${suffix}`) }).getByText("Uninstalled")).toBeVisible();
  const detachedBadge = table.getByRole("row", { name: new RegExp(`detached-${suffix}`) }).getByText("Detached Endpoint");
  await expect(detachedBadge).toBeVisible();
  await expect(detachedBadge).toHaveAttribute("title", /agent is gone/);
  await screenshot(page, testInfo, "fleet");
  await expectAccessible(page, testInfo, "fleet");

  await page.getByTestId("chip-orphaned").click();
  await expect(page).toHaveURL(/status=orphaned/);
  await expect(table.getByRole("row", { name: new RegExp(`detached-${suffix}`) })).toBeVisible();
  await expect(table.getByRole("row", { name: new RegExp(`healthy-${suffix}`) })).toHaveCount(0);
  // The filter survives reload: it lives in the URL.
  await page.reload();
  await expect(page.getByTestId("chip-orphaned")).toHaveAttribute("aria-pressed", "true");
  await expect(table.getByRole("row", { name: new RegExp(`gone-${suffix}`) })).toHaveCount(0);
  await expectAccessible(page, testInfo, "fleet filtered");

  // Search narrows by host name.
  await page.getByTestId("chip-orphaned").click();
  await page.getByRole("button", { name: /^All/ }).click();
  await page.getByRole("searchbox", { name: "Search agents" }).fill(`healthy-${suffix}`);
  await page.getByRole("button", { name: "Search" }).click();
  await expect(table.getByRole("row")).toHaveCount(2);
});

test("force unenroll is offered to fleet:all only, confirmed, and annotated", async ({ page, request }, testInfo) => {
  const agent = await enroll(request, `target-${testInfo.project.name}`);

  await signedIn(page, "viewer");
  await page.goto(`fleet/agents/${agent.id}`);
  await expect(page.getByTestId("audit")).toBeVisible();
  await expect(page.getByRole("button", { name: "Force unenroll" })).toHaveCount(0);
  await expectAccessible(page, testInfo, "agent, read-only");

  await page.getByTestId("user-menu").click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signedIn(page, "platform");
  await page.goto(`fleet/agents/${agent.id}`);
  await expect(page.getByTestId("audit")).toBeVisible();
  await expectAccessible(page, testInfo, "agent");
  await page.getByRole("button", { name: "Force unenroll" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("revoked at once");
  await screenshot(page, testInfo, "force-unenroll-dialog");
  await expectAccessible(page, testInfo, "agent, unenroll dialog open");
  await dialog.getByRole("button", { name: "Force unenroll" }).click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId("force-annotation")).toContainText("by platform");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Unenrolled");
  await expect(page.getByRole("button", { name: "Force unenroll" })).toHaveCount(0);

  // The removed agent keeps calling: refused, and the page says so.
  const refused = await request.post(`api/fleet/agents/${agent.id}/checkin`, { headers: agent.auth, data: { status: "online", poll_timeout: "0s" } });
  expect(refused.status()).toBe(401);
  // The page refreshes itself every 5 s; no reload needed.
  await expect(page.getByTestId("rejected-calls")).toContainText("keeps trying to connect", { timeout: 20_000 });
  await expect(page.getByTestId("activity")).toContainText("Force-unenrolled");
  await screenshot(page, testInfo, "agent");
  await expectAccessible(page, testInfo, "agent, unenrolled");
});

test("the fleet view, the agent page and the tasks page update on the push channel, without reload or polling", async ({ page, request }, testInfo) => {
  const suffix = testInfo.project.name;
  await signedIn(page, "admin");
  await page.goto(`fleet?q=live-${suffix}`);
  const table = page.getByTestId("agents");
  await expect(page.getByText("No agent matches these filters.")).toBeVisible();

  // An agent enrolls and checks in while the page is open: its row appears.
  const agent = await enroll(request, `live-${suffix}`);
  const row = table.getByRole("row", { name: new RegExp(`live-${suffix}`) });
  await expect(row.getByText("Online")).toBeVisible();

  // Its check-in turns degraded: the badge follows (agent_changed), here and on its page.
  const degrade = await request.post(`api/fleet/agents/${agent.id}/checkin`, {
    headers: agent.auth,
    data: { status: "degraded", message: "Endpoint integration failing", poll_timeout: "0s" },
  });
  expect(degrade.ok()).toBeTruthy();
  await expect(row.getByText("Degraded")).toBeVisible();
  await row.getByRole("link", { name: `live-${suffix}`, exact: true }).click();
  await expect(page.getByText("Endpoint integration failing")).toBeVisible();
  const recover = await request.post(`api/fleet/agents/${agent.id}/checkin`, {
    headers: agent.auth,
    data: { status: "online", message: "Running again", poll_timeout: "0s" },
  });
  expect(recover.ok()).toBeTruthy();
  await expect(page.getByText("Running again")).toBeVisible();
  await expectAccessible(page, testInfo, "agent page, live");

  // A task run asked for elsewhere (here: by this user's session, outside the page) shows up on the Tasks page.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
  const task = page.getByTestId("task-sessions_cleanup");
  const runs = Number(((await task.getByTestId("runs").textContent()) ?? "0").split(" / ")[0]);
  const asked = await page.request.post("internal/task_manager/tasks/sessions_cleanup/_run_soon", { headers: { "kbn-xsrf": "e2e" } });
  expect(asked.status()).toBe(204);
  await expect(task.getByTestId("runs")).toHaveText(new RegExp(`^${runs + 1} / 0$`));
});

/** The simulated agent (`make build` builds it), run as a command that ends. */
function simulator(...args: string[]) {
  return execFileSync(path.resolve(__dirname, "../../target/debug/warden-agent"), args, { stdio: "pipe", encoding: "utf8" });
}

test("who uninstalled an agent shows on its page, and a Detached Endpoint that keeps reporting shows when it was last heard from", async ({ page, baseURL }, testInfo) => {
  const suffix = `${testInfo.project.name}-${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(tmpdir(), "warden-e2e-fleet-"));
  const url = (baseURL as string).replace(/\/$/, "");
  const enrolled = (host: string) => {
    const state = path.join(dir, `${host}.json`);
    simulator("enroll", "--url", url, "--enrollment-token", TOKEN, "--hostname", host, "--state", state);
    return { state, id: JSON.parse(readFileSync(state, "utf8")).agent_id as string };
  };
  try {
    // Uninstalled by someone: the final message names the account and the process.
    const removed = enrolled(`removed-${suffix}`);
    expect(simulator("uninstall", "--state", removed.state, "--user", "alice")).toContain("uninstalled by alice; Warden was told");
    await signedIn(page, "viewer");
    await page.goto(`fleet/agents/${removed.id}`);
    await expect(page.getByRole("heading", { level: 1 })).toContainText("Uninstalled");
    await expect(page.getByTestId("audit-user")).toHaveText("alice");
    await expect(page.getByTestId("audit-process")).toContainText("warden-agent (pid ");
    await expect(page.getByTestId("audit-process")).toContainText("uninstall --state");
    await expect(page.getByTestId("activity")).toContainText("uninstalled: by alice, process warden-agent");

    // A Detached Endpoint reports, then reports again (Fleet Server's 409): it is heard from.
    const detached = enrolled(`still-up-${suffix}`);
    expect(simulator("orphan", "--state", detached.state)).toContain("recorded");
    await page.goto(`fleet/agents/${detached.id}`);
    await expect(page.getByRole("heading", { level: 1 })).toContainText("Detached Endpoint");
    await expect(page.getByTestId("last-heard")).toContainText("the host is up");
    expect(simulator("orphan", "--state", detached.state)).toContain("heard (already recorded)");
    await screenshot(page, testInfo, "agent-detached-heard");
    await expectAccessible(page, testInfo, "agent, detached and heard from");

    // The Fleet view's last activity says so too.
    await page.goto(`fleet?q=${encodeURIComponent(`still-up-${suffix}`)}`);
    const row = page.getByTestId("agents").getByRole("row", { name: new RegExp(`still-up-${suffix}`) });
    await expect(row.getByTestId("last-heard")).toContainText("heard from");
    await screenshot(page, testInfo, "fleet-detached-heard");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a re-enrolled host shows once, with its history, and a replaced agent that checks in again shows both as a conflict", async ({ page, request, baseURL }, testInfo) => {
  const host = `reimaged-${testInfo.project.name}-${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(tmpdir(), "warden-e2e-reenroll-"));
  const state = path.join(dir, "agent.json");
  const url = (baseURL as string).replace(/\/$/, "");
  try {
    simulator("enroll", "--url", url, "--enrollment-token", TOKEN, "--hostname", host, "--state", state);
    const old = JSON.parse(readFileSync(state, "utf8")) as { agent_id: string; api_key: string; host_id: string };
    expect(simulator("enroll", "--url", url, "--enrollment-token", TOKEN, "--state", state, "--reenroll")).toContain(`replacing agent ${old.agent_id}`);
    const current = JSON.parse(readFileSync(state, "utf8")) as { agent_id: string; host_id: string };
    expect(current.host_id).toBe(old.host_id);

    // The Fleet view shows the host once; the replaced agent only with inactive ones.
    await signedIn(page, "viewer");
    await page.goto(`fleet?q=${encodeURIComponent(host)}`);
    const table = page.getByTestId("agents");
    await expect(table.getByRole("row", { name: new RegExp(host) })).toHaveCount(1);
    await page.getByLabel("Show inactive, replaced and unenrolled").check();
    await expect(table.getByRole("row", { name: new RegExp(host) })).toHaveCount(2);
    await expect(table.getByRole("row", { name: new RegExp(host) }).getByText("Replaced", { exact: true })).toBeVisible();
    await screenshot(page, testInfo, "fleet-replaced");

    // The new agent links to the one it replaced, whose history stays, and back.
    await page.goto(`fleet/agents/${current.agent_id}`);
    await expect(page.getByTestId("host-id")).toHaveText(old.host_id);
    await page.getByTestId("replaces").getByRole("link").click();
    await expect(page).toHaveURL(new RegExp(`fleet/agents/${old.agent_id}$`));
    await expect(page.getByRole("heading", { level: 1 })).toContainText("Replaced");
    await expect(page.getByTestId("activity")).toContainText(`Replaced by agent ${current.agent_id}`);
    await expect(page.getByTestId("activity")).toContainText("Enrolled into policy Endpoints");
    await screenshot(page, testInfo, "agent-replaced");
    await expectAccessible(page, testInfo, "agent, replaced");
    await page.getByTestId("replaced-by").getByRole("link").click();
    await expect(page).toHaveURL(new RegExp(`fleet/agents/${current.agent_id}$`));

    // The replaced agent checks in again (someone else knew the host's id, or the old agent still runs): both are a conflict, live.
    const checkin = await request.post(`api/fleet/agents/${old.agent_id}/checkin`, {
      headers: { Authorization: `ApiKey ${old.api_key}` },
      data: { status: "online", message: "Running", poll_timeout: "0s" },
    });
    expect(checkin.ok()).toBeTruthy();
    await expect(page.getByTestId("host-conflict")).toContainText("Two agents claim this host");
    await expect(page.getByRole("heading", { level: 1 })).toContainText("Two agents claim this host");
    await screenshot(page, testInfo, "agent-conflict");
    await expectAccessible(page, testInfo, "agent, conflict");
    await page.goto(`fleet?q=${encodeURIComponent(host)}`);
    await expect(table.getByRole("row", { name: new RegExp(host) })).toHaveCount(2);
    await expect(table.getByRole("row", { name: new RegExp(host) }).getByText("Two agents claim this host")).toHaveCount(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a Fleet administrator lets a policy keep agent ids on re-enrollment; a viewer only reads it", async ({ page, request }, testInfo) => {
  const name = `keep-ids-${testInfo.project.name}-${Date.now().toString(36)}`;
  const created = await request.post("api/fleet/agent_policies", { headers: as("platform"), data: { name } });
  expect(created.ok()).toBeTruthy();
  const id = (await created.json()).item.id as string;
  const policies = page.getByTestId("agent-policies");

  await signedIn(page, "viewer");
  await page.goto("fleet");
  const readOnly = policies.getByRole("row", { name: new RegExp(name) });
  await expect(readOnly).toContainText("is a new agent; the old one is marked replaced");
  await expect(readOnly.getByRole("checkbox")).toHaveCount(0);

  await page.getByTestId("user-menu").click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await signedIn(page, "platform");
  await page.goto("fleet");
  const toggle = policies.getByRole("row", { name: new RegExp(name) }).getByRole("checkbox", { name: `keeps its agent id (${name})` });
  await expect(toggle).not.toBeChecked();
  await toggle.check();
  await expect(toggle).toBeChecked();
  await expect
    .poll(async () => (await (await request.get(`api/fleet/agent_policies/${id}`, { headers: as("platform") })).json()).item.keep_agent_id_on_reenroll)
    .toBe(true);
  await page.reload();
  await expect(policies.getByRole("row", { name: new RegExp(name) }).getByRole("checkbox")).toBeChecked();
  await screenshot(page, testInfo, "fleet-policies");
  await expectAccessible(page, testInfo, "fleet with policies");
});
