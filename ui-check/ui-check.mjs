// make ui-check: after `chatrabridge demo`, the Temporal Web UI lists the demo's
// conversation when filtered by the customer's email, with the conversation's search
// attributes as columns; the conversation's page shows its summary and current details;
// and its event history shows the customer's first message in clear, which Temporal holds
// encrypted: the Web UI decoded it through the bridge's codec server. As a control, the
// same history with the codec server unreachable must show ciphertext and not the message
// (else the check could not tell a decoded page from one that never needed decoding).
// Drives Debian's headless Chromium through playwright-core.
//
//   node ui-check.mjs --result .chatrabridge/demo-last.json --screenshot .chatrabridge/ui-check.png
//
// Exits 0 when every assertion holds, 1 naming the first that does not. Screenshots are
// written either way (the list to --screenshot, the conversation and its history next to
// it with "-conversation" and "-history" in the name).
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
for (const key of ['workflowId', 'runId', 'customerEmail', 'customerName', 'customerMessage', 'uiUrl', 'summary', 'taskId']) {
  if (!result[key]) fail(`${args.result} has no ${key}: run \`chatrabridge demo\` (it must pass) first`);
}
if (!result.passed) fail(`${args.result} is from a demo run that failed: run \`chatrabridge demo\` until it passes`);
const namespace = 'default';
const listURL = `${result.uiUrl}/namespaces/${namespace}/workflows?query=${encodeURIComponent(`CustomerEmail="${result.customerEmail}"`)}`;
const conversationShot = args.screenshot.replace(/(\.png)?$/, '-conversation.png');
const historyShot = args.screenshot.replace(/(\.png)?$/, '-history.png');
const historyURL = `${result.uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(result.workflowId)}/${result.runId}/history`;
fs.mkdirSync(path.dirname(args.screenshot), { recursive: true });

function fail(message) {
  console.error(`ui-check: FAILED: ${message}`);
  process.exit(1);
}

// The columns an operator would pick: the conversation's search attributes. The Web UI
// keeps its column choice in localStorage under this key, per namespace.
const columns = ['Status', 'Workflow ID', 'CustomerName', 'CustomerEmail', 'ConversationStatus', 'PlanfixTaskId', 'Start'];

// What an encrypted payload looks like in the Web UI when it was not decoded: its data,
// base64 in a JSON string, or its metadata's encoding.
const undecoded = /"[A-Za-z0-9+/]{48,}={0,2}"|binary\/encrypted/;

// expandMessages opens the conversation's event history on page and expands every
// "message" signal (a visitor's messages, as the webhooks delivered them), and returns
// the expanded details' locator. Payloads are decoded, if at all, by the Web UI calling
// its codec endpoint.
async function expandMessages(page) {
  await page.goto(historyURL, { waitUntil: 'domcontentloaded' });
  // Oldest first: the first messages are then on the first page of events, however long
  // the history grows.
  const descending = page.getByRole('button', { name: 'Descending', exact: true });
  const ascending = page.getByRole('button', { name: 'Ascending', exact: true });
  await descending.or(ascending).first().waitFor({ timeout: 20000 });
  if (await descending.count()) await descending.first().click();
  await ascending.first().waitFor({ timeout: 10000 });
  const signals = page.locator('[data-testid="event-summary-row"]')
    .filter({ hasText: 'Workflow Execution Signaled' })
    .filter({ hasText: /Signal Name\s*message\b/ });
  await signals.first().waitFor({ timeout: 20000 });
  const n = await signals.count();
  for (let i = 0; i < n; i++) {
    await signals.nth(i).click();
  }
  const details = page.locator('[data-testid="event-summary-row-expanded"]');
  await details.first().waitFor({ timeout: 10000 });
  return { details, n };
}

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

  // 3. The conversation's history: the customer's first message, encrypted in Temporal,
  // in clear in the expanded "message" signals, decoded through the bridge's codec server
  // (dev points its Web UI at it). The token is in the endpoint's path: never logged.
  let decoded = 0;
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.includes('/codec/') && u.pathname.endsWith('/decode') && r.status() === 200) decoded++;
  });
  const signals = await expandMessages(page);
  const message = signals.details.filter({ hasText: result.customerMessage });
  try {
    await message.first().waitFor({ timeout: 20000 });
  } catch {
    await page.screenshot({ path: historyShot });
    const shown = (await signals.details.allInnerTexts()).join(' | ').replace(/\s+/g, ' ').slice(0, 400);
    throw new Error(`the conversation's history does not show the customer's message "${result.customerMessage}" in its ${signals.n} message signal(s); ` +
      `they show: ${shown} (screenshot ${historyShot})`);
  }
  const shown = (await message.first().innerText()).replace(/\s+/g, ' ');
  if (undecoded.test(shown)) {
    await page.screenshot({ path: historyShot });
    throw new Error(`the message signal shows the message but also an undecoded payload: ${shown.slice(0, 400)} (screenshot ${historyShot})`);
  }
  if (decoded === 0) throw new Error('the Web UI showed the message without one answered call to the codec server\'s /decode');
  await message.first().evaluate((e) => e.scrollIntoView({ block: 'center' }));
  await page.screenshot({ path: historyShot });
  console.log(`ui-check: the conversation's history shows the customer's message "${result.customerMessage}", ` +
    `decoded by the codec server (${decoded} /decode calls answered)`);

  // 4. The control: the same history with the codec server unreachable shows ciphertext
  // where the message was, and not the message.
  const blind = await browser.newPage();
  await blind.route('**/codec/**', (route) => route.abort());
  const control = await expandMessages(blind);
  await blind.waitForTimeout(3000); // time for a decoded message to show, were there one
  const controlText = (await blind.locator('body').innerText());
  const controlDetails = (await control.details.allInnerTexts()).join(' ');
  await blind.close();
  if (controlText.includes(result.customerMessage)) {
    throw new Error('with the codec server unreachable the history still shows the customer\'s message in clear: ' +
      'Temporal holds it unencrypted, or the check cannot tell decoded from not');
  }
  if (!undecoded.test(controlDetails)) {
    throw new Error(`with the codec server unreachable the message signals show no ciphertext: ${controlDetails.replace(/\s+/g, ' ').slice(0, 400)}`);
  }
  console.log('ui-check: control: with the codec server unreachable the same signals show ciphertext, not the message');
  console.log(`ui-check: passed; screenshots ${args.screenshot}, ${conversationShot} and ${historyShot}`);
} catch (err) {
  failure = err;
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
if (failure) fail(failure.message);
