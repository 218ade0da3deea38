import { expect, test, type APIRequestContext } from "@playwright/test";
import { as, expectAccessible, failOnPageErrors, screens, signedIn } from "./helpers";

// The demo enrollment token that `warden serve --demo` seeds.
const TOKEN = Buffer.from("demo-enrollment:warden-demo-enrollment-secret").toString("base64");
const CASES_ACTION = "system-connector-.cases";

failOnPageErrors();

/** Enrolls an agent through the Fleet Server API and checks it in, as warden-agent does. */
async function enroll(request: APIRequestContext, hostname: string) {
  const response = await request.post("api/fleet/agents/enroll", {
    headers: { Authorization: `ApiKey ${TOKEN}` },
    data: { type: "PERMANENT", metadata: { local: { host: { hostname }, elastic: { agent: { version: "8.15.2" } } }, tags: ["e2e"] } },
  });
  expect(response.ok()).toBeTruthy();
  const body = await response.json();
  const agent = { id: body.item.id as string, auth: { Authorization: `ApiKey ${body.item.access_api_key}` } };
  const checkin = await request.post(`api/fleet/agents/${agent.id}/checkin`, { headers: agent.auth, data: { status: "online", message: "Running", poll_timeout: "0s" } });
  expect(checkin.ok()).toBeTruthy();
  return agent;
}

/** The agent's final message: it was uninstalled. */
async function uninstall(request: APIRequestContext, agent: { id: string; auth: Record<string, string> }) {
  const response = await request.post(`api/fleet/agents/${agent.id}/audit/unenroll`, {
    headers: agent.auth,
    data: { reason: "uninstall", timestamp: new Date().toISOString() },
  });
  expect(response.status()).toBe(200);
}

/** A fleet.agent_status rule on uninstalled agents whose host name starts with `prefix`, made by admin. */
async function uninstallRule(request: APIRequestContext, name: string, prefix: string, actions: unknown[] = []) {
  const response = await request.post("api/alerting/rule", {
    headers: as("admin"),
    data: {
      name,
      rule_type_id: "fleet.agent_status",
      consumer: "alerts",
      tags: ["e2e"],
      schedule: { interval: "1m" },
      params: { statuses: ["uninstalled"], kuery: `local_metadata.host.hostname:${prefix}*` },
      actions,
    },
  });
  expect(response.ok(), await response.text()).toBeTruthy();
  return (await response.json()) as { id: string; name: string };
}

/** Opens a case through the API as `username`. */
async function openCase(request: APIRequestContext, username: string, title: string) {
  const response = await request.post("api/cases", {
    headers: as(username),
    data: {
      title,
      description: "Arranged by the e2e test.",
      tags: ["e2e"],
      severity: "medium",
      connector: { id: "none", name: "none", type: ".none", fields: null },
      settings: { syncAlerts: false },
      owner: "securitySolution",
    },
  });
  expect(response.ok(), await response.text()).toBeTruthy();
  return (await response.json()) as { id: string; version: string };
}

test("a t1 analyst opens a case, comments, assigns it, works it to closed and sees how long it was open", async ({ page }, testInfo) => {
  const title = `Phishing wave ${testInfo.project.name} ${Date.now()}`;
  await signedIn(page, "t1");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Cases" }).click();
  await expect(page.getByRole("heading", { name: "Cases", exact: true })).toBeVisible();
  await expectAccessible(page, testInfo, "cases");

  // The form checks each field with the server's rules, next to the field.
  await page.getByRole("button", { name: "New case" }).click();
  await page.getByRole("button", { name: "Open case" }).click();
  await expect(page.getByText("The title field cannot be an empty string.")).toBeVisible();
  await expect(page.getByText("The description field cannot be an empty string.")).toBeVisible();
  await page.getByLabel("Title").fill("x".repeat(161));
  await page.getByRole("button", { name: "Open case" }).click();
  await expect(page.getByText("The length of the title is too long. The maximum length is 160.")).toBeVisible();
  await screens(page, testInfo, "case-new");
  await expectAccessible(page, testInfo, "new case form");

  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Description").fill("Several users got a fake invoice.\nTwo clicked the link.");
  await page.getByLabel("Tags (comma-separated)").fill("phishing, finance");
  await page.getByLabel("Severity").selectOption("high");
  await page.getByRole("button", { name: "Open case" }).click();

  await expect(page).toHaveURL(/\/cases\/[^/?]+$/);
  await expect(page.getByRole("heading", { name: title })).toBeVisible();
  const facts = page.getByTestId("case-facts");
  await expect(facts.locator(`.badge[data-status="open"]`)).toBeVisible();
  await expect(facts.getByText("High", { exact: true })).toBeVisible();
  await expect(facts.getByText("phishing")).toBeVisible();
  await expect(facts).toContainText("Tia Tier-One");
  await expect(page.getByTestId("case-duration")).toContainText("Open for");
  await expect(page.getByTestId("case-alerts")).toHaveCount(0);
  await expect(page.getByText("No alerts are attached to this case.")).toBeVisible();

  // Comment, with the tab in the URL.
  await page.getByRole("tab", { name: "Comments" }).click();
  await expect(page).toHaveURL(/\?tab=comments$/);
  await page.getByRole("button", { name: "Add comment" }).click();
  await expect(page.getByText("The comment field cannot be an empty string.")).toBeVisible();
  await page.getByRole("textbox", { name: /^Comment/ }).fill("Blocked the sender domain at the mail gateway.");
  await page.getByRole("button", { name: "Add comment" }).click();
  await expect(page.getByTestId("comments")).toContainText("Blocked the sender domain at the mail gateway.");
  await expect(page.getByTestId("comments")).toContainText("Tia Tier-One");
  await expect(page.getByRole("textbox", { name: /^Comment/ })).toHaveValue("");
  await expectAccessible(page, testInfo, "case comments");

  // Assign it: Warden knows t1's id from the case they opened.
  const work = page.getByTestId("case-work");
  await expect(work.getByTestId("assignees")).toHaveText("Nobody is assigned.");
  await work.getByRole("button", { name: "Assign to me" }).click();
  await expect(work.getByTestId("assignees")).toContainText("Tia Tier-One");
  await expect(work.getByRole("button", { name: "Assign to me" })).toHaveCount(0);

  // Open → in progress → closed.
  await work.getByRole("button", { name: "Mark in progress" }).click();
  await expect(facts.locator(`.badge[data-status="in-progress"]`)).toBeVisible();
  await expect(page.getByTestId("toast").filter({ hasText: "Case marked in progress" })).toBeVisible();
  await work.getByRole("button", { name: "Close case" }).click();
  await expect(facts.locator(`.badge[data-status="closed"]`)).toBeVisible();
  await expect(page.getByTestId("case-duration")).toContainText(/Closed after \d+ (s|min)/);
  await expect(page.getByTestId("case-duration-fact")).toHaveText(/^\d+ (s|min)/);
  await expect(page.getByTestId("case-closed")).toContainText("Tia Tier-One");
  await expect(work.getByRole("button", { name: "Reopen case" })).toBeVisible();
  await screens(page, testInfo, "case-closed");
  await expectAccessible(page, testInfo, "closed case");

  // Back in the list: the counts, the status filter and the search, in the URL.
  await page.getByRole("link", { name: "← Cases" }).click();
  await page.getByTestId("case-status-closed").click();
  await expect(page).toHaveURL(/status=closed/);
  await page.getByRole("searchbox", { name: "Search cases" }).fill(title);
  await page.getByRole("button", { name: "Search" }).click();
  const row = page.locator(`[data-testid="case-row"][data-name="${title}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText("Closed");
  await expect(row).toContainText("High");
  await expect(row).toContainText("finance");
  await expect(page.getByTestId("case-status-closed")).toContainText(/[1-9]/);
  await page.reload();
  await expect(page.getByTestId("case-status-closed")).toHaveAttribute("aria-pressed", "true");
  await expect(row).toBeVisible();
  await expect(page.getByTestId("case-status-open")).toContainText("0");
  await page.getByTestId("case-status-open").click();
  await expect(page.getByText("No case matches these filters.")).toBeVisible();
  await screens(page, testInfo, "cases-filtered");
});

test("a change made elsewhere is refused with the server's message, and the case reloads", async ({ page, request }, testInfo) => {
  const title = `Concurrent ${testInfo.project.name} ${Date.now()}`;
  const arranged = await openCase(request, "t1", title);
  // No live updates, so the page keeps the version it read.
  await page.route("**/internal/warden/events", (route) => route.abort());
  await signedIn(page, "t1");
  await page.goto(`cases/${arranged.id}`);
  await expect(page.getByRole("heading", { name: title })).toBeVisible();

  const renamed = `${title} (renamed)`;
  const changed = await request.patch("api/cases", { headers: as("t2"), data: { cases: [{ id: arranged.id, version: arranged.version, title: renamed }] } });
  expect(changed.ok(), await changed.text()).toBeTruthy();

  const work = page.getByTestId("case-work");
  await work.getByRole("button", { name: "Mark in progress" }).click();
  await expect(work.getByTestId("case-error")).toContainText(`These cases ${arranged.id} have been updated. Please refresh before saving additional updates.`);
  await expect(page.getByRole("heading", { name: renamed })).toBeVisible();
  await screens(page, testInfo, "case-conflict");
  await expectAccessible(page, testInfo, "case with a refused change");
  // With the version reloaded, the same change goes through.
  await work.getByRole("button", { name: "Mark in progress" }).click();
  await expect(page.getByTestId("case-facts").locator(`.badge[data-status="in-progress"]`)).toBeVisible();
  await expect(work.getByTestId("case-error")).toHaveCount(0);
});

test("a viewer sees the cases and a case read-only", async ({ page, request }, testInfo) => {
  const title = `Read only ${testInfo.project.name} ${Date.now()}`;
  const arranged = await openCase(request, "t1", title);
  const comment = await request.post(`api/cases/${arranged.id}/comments`, {
    headers: as("t1"),
    data: { type: "user", comment: "Looked at it.", owner: "securitySolution" },
  });
  expect(comment.ok()).toBeTruthy();

  await signedIn(page, "viewer");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Cases" }).click();
  const row = page.locator(`[data-testid="case-row"][data-name="${title}"]`);
  await expect(row).toBeVisible();
  await expect(page.getByRole("button", { name: "New case" })).toHaveCount(0);
  await screens(page, testInfo, "cases-viewer");
  await expectAccessible(page, testInfo, "cases, read-only");

  await row.getByRole("link", { name: title }).click();
  await expect(page.getByRole("heading", { name: title })).toBeVisible();
  const work = page.getByTestId("case-work");
  await expect(work.getByText("Changing a case needs cases:all.")).toBeVisible();
  await expect(work.getByRole("button")).toHaveCount(0);
  await expect(work.getByRole("combobox")).toHaveCount(0);
  await screens(page, testInfo, "case-viewer");
  await expectAccessible(page, testInfo, "case, read-only");
  await page.getByRole("tab", { name: "Comments" }).click();
  await expect(page.getByTestId("comments")).toContainText("Looked at it.");
  await expect(page.getByText("Commenting needs cases:all.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Add comment" })).toHaveCount(0);
});

test("the alerts page lists an alert a real rule raised, filters it by status and host in the URL, and links to its agent", async ({ page, request }, testInfo) => {
  const prefix = `alerted-${testInfo.project.name}-${Date.now()}`;
  const host = `${prefix}-pos-7`;
  const rule = await uninstallRule(request, `Protection removed ${testInfo.project.name}`, prefix);
  const agent = await enroll(request, host);
  await enroll(request, `${prefix}-healthy`);
  await uninstall(request, agent);
  // The rule runs as soon as Fleet reports the change.
  await expect
    .poll(async () => (await (await request.get(`internal/alerting/alerts/_find?rule_id=${rule.id}`, { headers: as("admin") })).json()).total, { timeout: 20_000 })
    .toBe(1);

  await signedIn(page, "t1");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Alerts" }).click();
  const row = page.locator(`[data-testid="alert-row"][data-name="${host}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText("Active");
  await expect(row).toContainText("Uninstalled");
  await expect(row.getByRole("link", { name: rule.name })).toHaveAttribute("href", new RegExp(`/rules/${rule.id}$`));
  await expectAccessible(page, testInfo, "alerts");

  await page.getByTestId("alert-status-recovered").click();
  await expect(page).toHaveURL(/status=recovered/);
  await expect(row).toHaveCount(0);
  await page.getByTestId("alert-status-active").click();
  await expect(page).toHaveURL(/status=active/);
  await page.getByRole("searchbox", { name: "Search alerts by host" }).fill(host);
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(new RegExp(`q=${host}`));
  await expect(page.getByTestId("alerts").locator("tbody tr")).toHaveCount(1);
  await page.getByLabel("Rule").selectOption(rule.id);
  await expect(page).toHaveURL(new RegExp(`rule=${rule.id}`));
  // The filters survive a reload: they live in the URL.
  await page.reload();
  await expect(page.getByTestId("alert-status-active")).toHaveAttribute("aria-pressed", "true");
  await expect(page.getByRole("searchbox", { name: "Search alerts by host" })).toHaveValue(host);
  await expect(page.getByLabel("Rule")).toHaveValue(rule.id);
  await expect(row).toBeVisible();
  await screens(page, testInfo, "alerts");
  await expectAccessible(page, testInfo, "alerts filtered");

  await row.getByRole("link", { name: host }).click();
  await expect(page).toHaveURL(new RegExp(`/fleet/agents/${agent.id}$`));
  await expect(page.getByRole("heading", { name: host })).toBeVisible();
});

test("a case the .cases action opened shows its alert in the Alerts tab, linked to the rule and the agent", async ({ page, request }, testInfo) => {
  const prefix = `cased-${testInfo.project.name}-${Date.now()}`;
  const host = `${prefix}-web-1`;
  const ruleName = `Removed with a case ${testInfo.project.name} ${Date.now()}`;
  const rule = await uninstallRule(request, ruleName, prefix, [
    { id: CASES_ACTION, params: { subAction: "run", subActionParams: { groupingBy: ["host.name"], reopenClosedCases: false, timeWindow: "7d" } } },
  ]);
  const agent = await enroll(request, host);
  await uninstall(request, agent);
  // The rule runs at once; its .cases action runs as a task right after.
  let caseId = "";
  await expect
    .poll(
      async () => {
        const found = await (await request.get(`internal/alerting/alerts/_find?rule_id=${rule.id}`, { headers: as("admin") })).json();
        caseId = found.data[0]?.case_ids?.[0] ?? "";
        return caseId;
      },
      { timeout: 20_000 },
    )
    .not.toBe("");

  await signedIn(page, "t1");
  await page.goto(`alerts?rule=${rule.id}`);
  const row = page.locator(`[data-testid="alert-row"][data-name="${host}"]`);
  await expect(row.getByRole("link", { name: /^Case / })).toHaveAttribute("href", new RegExp(`/cases/${caseId}$`));
  await screens(page, testInfo, "alerts-with-case");
  await row.getByRole("link", { name: /^Case / }).click();
  await expect(page).toHaveURL(new RegExp(`/cases/${caseId}$`));
  await expect(page.getByRole("heading", { name: `${ruleName} - Grouping by ${host} (Auto-created)` })).toBeVisible();
  await expect(page.getByTestId("case-facts")).toContainText("auto-generated");

  const attached = page.locator(`[data-testid="case-alert-row"]`);
  await expect(attached).toHaveCount(1);
  await expect(attached).toContainText("Active");
  await expect(attached).toContainText("Uninstalled");
  await expect(attached.getByRole("link", { name: ruleName })).toHaveAttribute("href", new RegExp(`/rules/${rule.id}$`));
  await screens(page, testInfo, "case-alerts");
  await expectAccessible(page, testInfo, "case alerts tab");

  // Its alert leads to its agent.
  await attached.getByRole("link", { name: host }).click();
  await expect(page).toHaveURL(new RegExp(`/fleet/agents/${agent.id}$`));
  await page.goBack();
  await expect(attached).toHaveCount(1);

  // The rule deleted, its alerts go with it: the case still says what it knows.
  const deleted = await request.delete(`api/alerting/rule/${rule.id}`, { headers: as("admin") });
  expect(deleted.status()).toBe(204);
  await page.reload();
  await expect(attached).toContainText("Gone");
  await expect(attached.getByRole("link", { name: ruleName })).toHaveAttribute("href", new RegExp(`/rules/${rule.id}$`));
  await expect(attached.getByRole("link", { name: host })).toHaveCount(0);
  await expectAccessible(page, testInfo, "case alerts tab, alert gone");
});
