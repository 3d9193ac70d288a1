// make ui-check: after `chatrabridge demo`, the Temporal Web UI lists the demo's
// conversation when filtered by the customer's email, with the conversation's search
// attributes as columns, and the conversation's page shows its summary and current
// details. Drives Debian's headless Chromium through playwright-core.
//
//   node ui-check.mjs --result .chatrabridge/demo-last.json --screenshot .chatrabridge/ui-check.png
//
// Exits 0 when every assertion holds, 1 naming the first that does not. Screenshots are
// written either way (the list to --screenshot, the conversation next to it with
// "-conversation" in the name).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    result: { type: 'string', default: '.chatrabridge/demo-last.json' },
    screenshot: { type: 'string', default: '.chatrabridge/ui-check.png' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '60' }, // seconds to wait for the list to show the conversation
  },
});

const result = JSON.parse(fs.readFileSync(args.result, 'utf8'));
for (const key of ['workflowId', 'customerEmail', 'customerName', 'uiUrl', 'summary', 'taskId']) {
  if (!result[key]) fail(`${args.result} has no ${key}: run \`chatrabridge demo\` (it must pass) first`);
}
if (!result.passed) fail(`${args.result} is from a demo run that failed: run \`chatrabridge demo\` until it passes`);
const namespace = 'default';
const listURL = `${result.uiUrl}/namespaces/${namespace}/workflows?query=${encodeURIComponent(`CustomerEmail="${result.customerEmail}"`)}`;
const conversationShot = args.screenshot.replace(/(\.png)?$/, '-conversation.png');
fs.mkdirSync(path.dirname(args.screenshot), { recursive: true });

function fail(message) {
  console.error(`ui-check: FAILED: ${message}`);
  process.exit(1);
}

// The columns an operator would pick: the conversation's search attributes. The Web UI
// keeps its column choice in localStorage under this key, per namespace.
const columns = ['Status', 'Workflow ID', 'CustomerName', 'CustomerEmail', 'ConversationStatus', 'PlanfixTaskId', 'Start'];

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ui-check-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  viewport: { width: 1800, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failure;
try {
  await browser.addInitScript((cols) => {
    localStorage.setItem('namespace-workflow-table-columns', JSON.stringify({ default: cols.map((label) => ({ label })) }));
  }, columns);
  const page = browser.pages()[0] ?? (await browser.newPage());

  // 1. The list filtered by the customer's email: exactly this conversation, with its
  // customer, status and task as columns. Visibility lags a little behind the workflow:
  // reload until the row shows what the workflow last published.
  console.log(`ui-check: ${listURL}`);
  const deadline = Date.now() + Number(args.timeout) * 1000;
  let cells = [];
  let rows = 0;
  for (;;) {
    await page.goto(listURL, { waitUntil: 'domcontentloaded' });
    const table = page.locator('[data-testid="workflows-summary-configurable-table-row"]');
    try {
      await table.first().waitFor({ timeout: 10000 });
      rows = await table.count();
      cells = (await table.first().locator('td').allInnerTexts()).map((t) => t.trim());
    } catch {
      rows = 0;
      cells = [];
    }
    const want = [result.workflowId, result.customerName, result.customerEmail, 'closed', String(result.taskId)];
    if (rows === 1 && want.every((w) => cells.includes(w))) break;
    if (Date.now() > deadline) {
      await page.screenshot({ path: args.screenshot });
      throw new Error(`the list filtered by CustomerEmail="${result.customerEmail}" shows ${rows} row(s); ` +
        `first row cells ${JSON.stringify(cells)}; want one row with ${JSON.stringify(want)} (screenshot ${args.screenshot})`);
    }
    await page.waitForTimeout(2000);
  }
  const title = (await page.locator('h1').first().innerText()).replace(/\s+/g, ' ').trim();
  if (!/^1 Workflow\b/.test(title)) throw new Error(`the list's title is "${title}", want "1 Workflow"`);
  await page.screenshot({ path: args.screenshot });
  console.log(`ui-check: listed: ${cells.filter((c) => c && !c.startsWith('Select Workflow')).join(' | ')}`);

  // 2. The conversation's page, reached from the list: its summary and current details.
  await page.getByRole('link', { name: result.workflowId, exact: true }).first().click();
  await page.waitForURL((u) => u.pathname.includes(encodeURIComponent(result.workflowId)), { timeout: 20000 });
  await page.getByRole('tab', { name: 'User Metadata' }).or(page.getByRole('link', { name: 'User Metadata' })).first().click();
  const summary = page.frameLocator('iframe[name="user-metadata-summary"], iframe#user-metadata-summary');
  try {
    await summary.getByText(result.summary, { exact: true }).waitFor({ timeout: 20000 });
  } catch {
    await page.screenshot({ path: conversationShot });
    throw new Error(`the conversation's page does not show the summary "${result.summary}" (screenshot ${conversationShot})`);
  }
  const details = page.frameLocator('iframe[name="user-metadata-current-details"], iframe#user-metadata-current-details');
  try {
    await details.getByText(`task #${result.taskId}`).first().waitFor({ timeout: 20000 });
    await details.getByText(result.customerName).first().waitFor({ timeout: 5000 });
  } catch {
    await page.screenshot({ path: conversationShot });
    throw new Error(`the conversation's current details lack "task #${result.taskId}" or "${result.customerName}" (screenshot ${conversationShot})`);
  }
  await page.screenshot({ path: conversationShot });
  console.log(`ui-check: the conversation's page shows the summary "${result.summary}" and its task #${result.taskId}`);
  console.log(`ui-check: passed; screenshots ${args.screenshot} and ${conversationShot}`);
} catch (err) {
  failure = err;
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
if (failure) fail(failure.message);
