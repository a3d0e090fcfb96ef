// Staff portal end to end in headless Debian Chromium, against the real binary started with
// --demo on a fresh data dir. Screenshots go to a temp dir, or to docs/screenshots with
// UPDATE_SCREENSHOTS=1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

// axe-core from node_modules (npm ci), evaluated in the page: nothing is fetched at run time.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const root = resolve(import.meta.dirname, '../..');
const bin = process.env.RXBRIDGE_BIN ?? join(root, 'target/debug/rxbridge');
const shots = process.env.UPDATE_SCREENSHOTS ? join(root, 'docs/screenshots') : mkdtempSync(join(tmpdir(), 'rxb-shots-'));
mkdirSync(shots, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), 'rxb-browser-'));
let server, sim, base, demo, browser, flaggedId, plainId, nhsBody, paperBody;
const simPort = 20000 + Math.floor(Math.random() * 20000);
const configFile = join(dataDir, 'rxbridge.toml');
writeFileSync(configFile, '[warehouse]\nsweep_interval_secs = 1\n\n[webhooks]\npoll_interval_ms = 200\n');

function today() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/London' }).format(new Date());
}

async function submit(body, key) {
  const r = await fetch(`${base}/v1/prescriptions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', 'Idempotency-Key': `browser-${Math.random()}` },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.equal(r.status, 201, text);
  return JSON.parse(text).id;
}

before(async () => {
  server = spawn(bin, ['--data-dir', dataDir, 'serve', '--demo', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, RXBRIDGE_LOG: 'warn', RXBRIDGE_METRICS_LISTEN: 'off', RXBRIDGE_CONFIG: configFile, RXBRIDGE_DEMO_SIM_URL: `http://127.0.0.1:${simPort}/orders` },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start: ${out}`)), 20000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/staff portal: (http:\/\/[^/\s]+)\/staff/);
      if (m && out.includes('sandbox key')) {
        clearTimeout(timer);
        base = m[1];
        ok();
      }
    });
  });
  demo = JSON.parse(readFileSync(join(dataDir, 'demo-clinic.json'), 'utf8'));
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const body = doc.components.schemas.PrescriptionIn.example;
  body.issued_on = today();
  paperBody = structuredClone(body);
  body.type = 'nhs';
  body.authority = { kind: 'eps', eps_prescription_id: '24F5DA-A83008-7EFE6Z' };
  delete body.prescriber.private_prescriber_code;
  body.nhs = { exemption: '0001', evidence_seen: true };
  plainId = await submit(body, demo.test_key);
  nhsBody = structuredClone(body);
  const flagged = structuredClone(body);
  Object.assign(flagged.items[0], { quantity: 31, quantity_in_words: 'thirty-one', days_supply: 31 });
  // Another patient (same details with another NHS number would be an identity conflict).
  Object.assign(flagged.patient, { nhs_number: '4010232137', given_name: 'Alex', family_name: 'Morgan', date_of_birth: '1994-06-01', email: 'alex.morgan@example.com' });
  flagged.patient.address.lines = ['4 Mill Lane'];
  flagged.clinic_reference = 'ADHD-FLAGGED-1';
  flaggedId = await submit(flagged, demo.test_key);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
  });
});

after(async () => {
  await browser?.close();
  sim?.kill('SIGTERM');
  server?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
  if (!process.env.UPDATE_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
});

/** axe-core on the page as it is: WCAG 2.0-2.2 A and AA and best practice, zero violations. */
async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  }));
  return r.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`);
}

async function axe(page) {
  const found = await axeViolations(page);
  assert.deepEqual(found, [], `axe on ${page.url()}:\n  ${found.join('\n  ')}`);
}

/** The page checked with axe, then its screenshot. */
async function shot(page, name) {
  await axe(page);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

function account(role) {
  return demo.staff.find((s) => s.role === role);
}

/** Sign in with the one-time password and set a permanent one. */
async function signIn(page, role, screenshot) {
  const a = account(role);
  await page.goto(`${base}/staff`);
  assert.match(page.url(), /\/staff\/login$/);
  await axe(page);
  if (screenshot) await shot(page, 'login');
  await page.getByLabel('Email').fill(a.email);
  await page.getByLabel('Password').fill(a.one_time_password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(page.url(), /\/staff\/password$/);
  await axe(page);
  await page.getByLabel('Current password').fill(a.one_time_password);
  await page.getByLabel('New password').fill(`the demo passphrase of the ${role.length}-letter role`);
  await page.getByRole('button', { name: 'Change password' }).click();
  assert.match(page.url(), /\/staff$/);
  await axe(page);
}

test('the axe check finds violations when a page has them', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.setContent('<html><body><input type="text"><p style="color:#bbb;background:#fff">faint</p></body></html>');
  const found = (await axeViolations(page)).join('\n');
  for (const rule of ['html-has-lang', 'label', 'color-contrast', 'landmark-one-main']) assert.match(found, new RegExp(rule));
  await ctx.close();
});

test('a pharmacist works the list and approves a flagged prescription', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, 'pharmacist', true);
  await page.getByRole('link', { name: 'switch' }).click();
  await page.getByRole('link', { name: 'Worklist' }).click();
  assert.match(page.url(), /worklist\?mode=test/);
  await shot(page, 'worklist');
  await page.getByRole('link', { name: 'ADHD-FLAGGED-1' }).click();
  assert.ok(await page.getByText('cd_over_30_days').first().isVisible());
  await shot(page, 'prescription');
  // Approving without acknowledging the flag is refused, with the reason on the page.
  await page.getByLabel('Reason for the decision').fill('Titration agreed with the prescriber');
  await page.getByRole('button', { name: 'Approve' }).click();
  assert.ok(await page.getByText('not acknowledged: cd_over_30_days').isVisible());
  await axe(page);
  await page.getByLabel('cd_over_30_days').check();
  await page.getByLabel('Reason for the decision').fill('Titration agreed with the prescriber');
  await page.getByRole('button', { name: 'Approve' }).click();
  assert.ok(await page.getByText('awaiting_payment').first().isVisible());
  assert.ok(await page.getByText('prescription.approved').isVisible());
  // The timeline holds changes and actions only, with names and London times.
  const timeline = page.locator('ol.timeline');
  assert.doesNotMatch(await timeline.innerText(), /staff\.viewed_prescription/);
  assert.match(await timeline.innerText(), /\d{2}:\d{2}:\d{2} (GMT|BST) — prescription\.received by Demo ADHD Clinic \(clinic\)/);
  assert.match(await timeline.innerText(), /prescription\.approved by pharmacist@demo\.rxbridge \(pharmacist\) — Titration agreed/);
  assert.equal(await page.getByText(/^Access log/).count(), 0, 'the access log is for administrators');
  // The NHS charge is per item, whatever the quantity.
  const charge = page.locator('section', { has: page.getByRole('heading', { name: 'Payment' }) }).locator('tbody tr').first();
  assert.match(await charge.innerText(), /1 item\s+× £9\.90\s+£9\.90/);
  await axe(page);
  // A post without the form token is refused.
  const r = await page.request.post(`${base}/staff/logout`, { form: { csrf: 'forged' } });
  assert.equal(r.status(), 403);
  await ctx.close();
});

/** The payment link in the newest payment email to the patient. */
function paymentLink() {
  const dir = join(dataDir, 'mail');
  const name = readdirSync(dir).filter((n) => n.startsWith('link-')).sort().pop();
  assert.ok(name, 'a payment-link email was written');
  const text = readFileSync(join(dir, name), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const m = text.match(/http:\/\/[^\s]+\/pay\/[^\s]+/);
  assert.ok(m, text);
  return m[0];
}

test('the patient pays on the sandbox checkout and the order is ready', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(paymentLink());
  assert.match(page.url(), /\/sandbox\/checkout\/cs_sandbox_/);
  assert.ok(await page.getByText('no real card is charged').isVisible());
  // The patient's checkout page is not the portal's (its markup is the payments adapter's);
  // it is held to the same accessibility bar.
  await shot(page, 'checkout');
  await page.getByRole('button', { name: /^Pay £/ }).click();
  assert.ok(await page.getByRole('heading', { name: 'Payment received' }).isVisible());
  await axe(page);
  const r = await fetch(`${base}/v1/prescriptions/${flaggedId}`, { headers: { Authorization: `Bearer ${demo.test_key}` } });
  assert.equal((await r.json()).status, 'ready_for_fulfilment');
  await ctx.close();
});

test('the warehouse simulator dispatches and delivers; the CD register shows the supply', async () => {
  const secrets = JSON.parse(readFileSync(join(dataDir, 'demo-warehouse.json'), 'utf8'));
  sim = spawn(bin, ['dev', 'warehouse-sim', '--listen', `127.0.0.1:${simPort}`, '--rxbridge', base,
    '--order-secret', secrets.order_secret, '--event-secret', secrets.event_secret, '--delay-ms', '0'], {
    env: { ...process.env, RXBRIDGE_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let status;
  for (let i = 0; i < 100 && status !== 'delivered'; i++) {
    await new Promise((ok) => setTimeout(ok, 200));
    const r = await fetch(`${base}/v1/prescriptions/${flaggedId}`, { headers: { Authorization: `Bearer ${demo.test_key}` } });
    status = (await r.json()).status;
  }
  assert.equal(status, 'delivered');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/staff/login`);
  const a = account('pharmacist');
  await page.getByLabel('Email').fill(a.email);
  await page.getByLabel('Password').fill('the demo passphrase of the 10-letter role');
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Live registers hold no sandbox sections: no page mixes the two.
  await page.getByRole('link', { name: 'Registers' }).click();
  assert.equal(await page.getByRole('link', { name: 'test/CONCERTA-XL-36' }).count(), 0);
  await page.getByRole('link', { name: 'switch' }).click();
  await page.getByRole('link', { name: 'Registers' }).click();
  assert.match(await page.title(), /^SANDBOX · /);
  await page.getByRole('link', { name: 'test/CONCERTA-XL-36' }).click();
  assert.ok(await page.getByRole('cell', { name: '-31' }).isVisible());
  assert.ok(await page.getByRole('cell', { name: '969', exact: true }).first().isVisible(), '1000 booked in, 31 supplied');
  // Numbered within the section; quantities are numbers; the supplying pharmacist is the author.
  const rows = page.locator('table.register tbody tr');
  assert.equal(await rows.first().locator('td').first().innerText(), '1');
  const receipt = await rows.first().locator('td').allInnerTexts();
  assert.equal(receipt[5], '1000', receipt.join(' | '));
  const supply = await rows.filter({ hasText: '-31' }).first().locator('td').allInnerTexts();
  assert.match(supply[11], /^pharmacist GPhC 2033467 \(staff:st_/, supply.join(' | '));
  // It fits a 1280 px screen, and prints without the portal's header and forms.
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 1280), 'no horizontal scroll at 1280 px');
  await shot(page, 'cd-register');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false);
  assert.ok(await page.getByRole('cell', { name: '-31' }).isVisible());
  const pdf = await page.pdf({ format: 'A4' });
  assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
  await page.emulateMedia({ media: 'screen' });
  const csvHref = await page.getByRole('link', { name: 'CSV' }).getAttribute('href');
  const csv = await (await page.request.get(`${base}${csvHref}`)).text();
  assert.ok(!csv.includes("'+") && !csv.includes("'-"), csv);
  assert.match(csv, /,1000,/);
  // A refused correction comes back on the section's page with why and what was typed.
  const sectionUrl = page.url();
  await page.getByLabel('Corrects entry').fill('99');
  await page.getByLabel('Note', { exact: true }).fill('Batch number misread');
  await page.getByRole('button', { name: 'Add to the register' }).click();
  assert.equal(page.url(), sectionUrl, 'post/redirect/get: the section page');
  assert.match(await page.getByRole('alert').innerText(), /entry 99 is not in this section/);
  assert.equal(await page.getByLabel('Note', { exact: true }).inputValue(), 'Batch number misread');
  await axe(page);
  await page.getByLabel('Corrects entry').fill('2');
  await page.getByRole('button', { name: 'Add to the register' }).click();
  assert.ok(await page.getByRole('cell', { name: /^Correction to entry 2, made .*: Batch number misread$/ }).isVisible());
  await ctx.close();
});

test('finance sees the month and downloads the exports', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, 'finance');
  await page.getByRole('link', { name: 'switch' }).click();
  await page.getByRole('link', { name: 'Finance' }).click();
  assert.ok(await page.getByRole('heading', { name: /Payments reconciliation/ }).isVisible());
  assert.ok(await page.getByText('No differences.').isVisible());
  await shot(page, 'finance');
  const href = await page.getByRole('link', { name: 'nhs-claim.pdf' }).getAttribute('href');
  const pdf = await page.request.get(`${base}${href}`);
  assert.equal(pdf.status(), 200);
  assert.equal(pdf.headers()['content-type'], 'application/pdf');
  assert.ok((await pdf.body()).subarray(0, 5).toString() === '%PDF-');
  const csv = await page.request.get(`${base}${href.replace('.pdf', '.csv')}`);
  assert.match(await csv.text(), /^prescription_id,clinic_reference,dispensed_on/);
  await ctx.close();
});

test('support searches, sees masked data, opens with a reason, and cannot approve', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, 'support');
  await page.goto(`${base}/staff?mode=test`);
  await page.getByLabel('Search by').selectOption('nhs');
  await page.getByLabel('Value').fill('943 476 5919');
  await page.getByRole('button', { name: 'Search' }).click();
  assert.ok(await page.getByText('*******919').first().isVisible());
  assert.ok(await page.getByText('Waiting for a pharmacist\'s clinical check.').first().isVisible(), 'each result says where it is');
  assert.equal(await page.getByText('Taylor').count(), 0);
  await shot(page, 'search');
  // By phone number too (as the patient reads it out), keyed like the rest.
  await page.getByLabel('Search by').selectOption('phone');
  await page.getByLabel('Value').fill('07700 900123');
  await page.getByRole('button', { name: 'Search' }).click();
  assert.ok(await page.getByRole('link', { name: 'ADHD-2026-000123' }).isVisible());
  await page.getByRole('link', { name: 'ADHD-2026-000123' }).click();
  assert.ok(await page.getByRole('button', { name: 'Open full record' }).isVisible());
  assert.match(await page.locator('.note').first().innerText(), /Tell the patient: A pharmacist is checking your prescription/);
  await axe(page);
  await page.getByLabel('Reason for opening the full record').fill('Patient called about delivery');
  await page.getByRole('button', { name: 'Open full record' }).click();
  assert.ok(await page.getByText('Sam Taylor').isVisible());
  await axe(page);
  assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);
  assert.equal((await page.request.get(`${base}/staff/finance?mode=test`)).status(), 403, 'finance pages are for finance staff');
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const r = await page.request.post(`${base}/staff/prescriptions/${plainId}/decision?mode=test`, {
    form: { csrf, version: '1', decision: 'approve', reason: 'not mine to decide' },
  });
  assert.equal(r.status(), 403);
  await ctx.close();
});

test('five wrong passwords lock the account', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const a = account('support');
  for (let i = 0; i < 5; i++) {
    await page.goto(`${base}/staff/login`);
    await page.getByLabel('Email').fill(a.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  assert.ok(await page.getByText('Too many failed attempts').isVisible());
  await ctx.close();
});

/** Sign in with the permanent password the first test of each role set. */
async function signInAgain(page, role) {
  await page.goto(`${base}/staff/login`);
  await page.getByLabel('Email').fill(account(role).email);
  await page.getByLabel('Password').fill(`the demo passphrase of the ${role.length}-letter role`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(page.url(), /\/staff$/);
}

async function statusOf(id) {
  const r = await fetch(`${base}/v1/prescriptions/${id}`, { headers: { Authorization: `Bearer ${demo.test_key}` } });
  return (await r.json()).status;
}

test('the clinical check screen: prescriber, items in figures and words, supply history and linked findings', async () => {
  const repeat = structuredClone(nhsBody);
  repeat.clinic_reference = 'ADHD-REPEAT-1';
  const repeatId = await submit(repeat, demo.test_key);
  const conflict = structuredClone(nhsBody);
  Object.assign(conflict, { clinic_reference: 'ADHD-CONFLICT-1' });
  conflict.patient.given_name = 'Samuel';
  const conflictId = await submit(conflict, demo.test_key);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signInAgain(page, 'pharmacist');
  await page.goto(`${base}/staff/prescriptions/${repeatId}?mode=test`);
  // In reading order: patient (with age), prescriber, authority, items.
  const headings = await page.getByRole('heading', { level: 2 }).allTextContents();
  assert.deepEqual(headings.slice(0, 6), ['Patient', 'Prescriber', 'Authority', 'Items', 'Findings', 'Supply history (all clinics)']);
  assert.ok(await page.getByText(/1998-02-14 \(age \d+\)/).isVisible());
  assert.ok(await page.getByText('GMC 7012345').isVisible());
  assert.ok(await page.getByText('a doctor').isVisible());
  assert.ok(await page.getByText('NHS Electronic Prescription Service').isVisible());
  const item = page.locator('table.items tbody tr').first();
  assert.match(await item.innerText(), /Concerta XL 36 mg prolonged-release tablet[\s\S]*CD2[\s\S]*28 \(twenty-eight\)[\s\S]*in words as written: “twenty-eight”[\s\S]*1 tablet once a day[\s\S]*Take ONE tablet each morning[\s\S]*28 computed[\s\S]*declared: 28[\s\S]*36 mg[\s\S]*licensed max 72 mg \(adult\)/);
  // The earlier supply is in the history, and the duplicate finding links to it.
  const history = page.locator('section[aria-labelledby=h-history] tbody tr');
  assert.ok((await history.count()) >= 1);
  assert.match(await history.first().innerText(), /Concerta XL 36 mg prolonged-release tablet\s+28\s+28\s+\w+\s+.*\(this clinic\)/);
  await shot(page, 'clinical-check');
  await page.getByRole('link', { name: 'Open the earlier supply (ADHD-2026-000123)' }).click();
  assert.ok(page.url().includes(`/staff/prescriptions/${plainId}?mode=test`));
  // An identity conflict links to the record it conflicts with.
  await page.goto(`${base}/staff/prescriptions/${conflictId}?mode=test`);
  assert.ok(await page.getByText('identity_conflict').first().isVisible());
  await page.getByRole('link', { name: 'Open the conflicting record (ADHD-2026-000123)' }).click();
  assert.ok(page.url().includes(`/staff/prescriptions/${plainId}?mode=test`));
  await ctx.close();
});

test('the paper original is matched blind: the serial stays hidden until the keyed one matches', async () => {
  const paper = structuredClone(paperBody);
  paper.clinic_reference = 'ADHD-PAPER-1';
  paper.authority.serial_number = 'PCD7654321';
  Object.assign(paper.patient, { nhs_number: '4857773457', given_name: 'Robin', family_name: 'Hughes', date_of_birth: '1990-03-03', email: 'robin.hughes@example.com' });
  paper.patient.address.lines = ['7 Canal Street'];
  const id = await submit(paper, demo.test_key);
  assert.equal(await statusOf(id), 'awaiting_original');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signInAgain(page, 'pharmacist');
  await page.goto(`${base}/staff/prescriptions/${id}?mode=test`);
  assert.ok(await page.getByText('Hidden until the original is matched').isVisible());
  await axe(page);
  assert.ok(!(await page.content()).includes('7654321'), 'the expected serial is not on the page');
  await page.getByLabel('Serial number on the form').fill('PCD7654320');
  await page.getByRole('button', { name: 'Record the original' }).click();
  assert.ok(await page.getByRole('alert').isVisible());
  await axe(page);
  assert.equal(await page.getByLabel('Serial number on the form').inputValue(), 'PCD7654320', 'what was typed is kept');
  assert.ok(!(await page.content()).includes('7654321'), 'a mismatch does not reveal the serial');
  assert.equal(await statusOf(id), 'awaiting_original');
  await page.getByLabel('Serial number on the form').fill('PCD 765 4321');
  await page.getByRole('button', { name: 'Record the original' }).click();
  assert.match(page.url(), new RegExp(`/staff/prescriptions/${id}\\?mode=test$`), 'redirected to the page after the post');
  assert.equal(await statusOf(id), 'awaiting_clinical_check');
  assert.ok(await page.getByText('PCD7654321').isVisible(), 'shown once matched');
  await ctx.close();
});

test('decisions cannot go wrong quietly: typed reason kept, flags with messages, amendment, reject confirmed', async () => {
  const words = structuredClone(nhsBody);
  words.clinic_reference = 'ADHD-WORDS-1';
  delete words.items[0].quantity_in_words;
  Object.assign(words.patient, { nhs_number: '4505577104', given_name: 'Jo', family_name: 'Price', date_of_birth: '1985-09-09', email: 'jo.price@example.com' });
  words.patient.address.lines = ['3 Quay Road'];
  const wordsId = await submit(words, demo.test_key);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signInAgain(page, 'pharmacist');
  await page.goto(`${base}/staff/prescriptions/${wordsId}?mode=test`);
  // Each flag is listed with its message; approving says what will happen.
  const ack = page.getByLabel(/cd_quantity_words_missing \(item 1\) — .*words/);
  assert.ok(await ack.isVisible());
  assert.match(await page.locator('.note', { hasText: 'Approving will' }).innerText(), /Approving will: charge £9\.90 .*payment link.*release the order to the warehouse once paid/);
  // Refused: the typed reason and ticks stay, the reason is next to the form.
  await ack.check();
  await page.getByLabel('Reason for the decision').fill('Quantity confirmed with the prescriber by phone');
  await page.getByRole('button', { name: 'Approve' }).click();
  const alert = page.locator('section[aria-labelledby=h-decision] [role=alert]');
  assert.match(await alert.innerText(), /record what you added for cd_quantity_words_missing/);
  assert.equal(await page.getByLabel('Reason for the decision').inputValue(), 'Quantity confirmed with the prescriber by phone');
  assert.ok(await ack.isChecked());
  // Post/redirect/get for a refusal too: the page's own address, and a reload shows the
  // page as it is, re-sending nothing (the refusal was shown once).
  assert.match(page.url(), new RegExp(`/staff/prescriptions/${wordsId}\\?mode=test$`), 'refused: back on the page');
  await axe(page);
  await page.reload();
  assert.equal(await alert.count(), 0, 'shown once');
  assert.equal(await page.getByLabel('Reason for the decision').inputValue(), '');
  assert.equal(await statusOf(wordsId), 'awaiting_clinical_check');
  await ack.check();
  await page.getByLabel('Reason for the decision').fill('Quantity confirmed with the prescriber by phone');
  await page.getByLabel(/the quantity in words you added/).fill('twenty-eight');
  await page.getByRole('button', { name: 'Approve' }).click();
  assert.match(page.url(), new RegExp(`/staff/prescriptions/${wordsId}\\?mode=test$`), 'post/redirect/get');
  assert.equal(await statusOf(wordsId), 'awaiting_payment');
  await axe(page);
  assert.ok(await page.getByText('twenty-eight').first().isVisible());
  // Reject asks for a reason, then for confirmation; nothing changes until confirmed.
  const reject = structuredClone(nhsBody);
  reject.clinic_reference = 'ADHD-REJECT-1';
  Object.assign(reject.patient, { nhs_number: '9434765994', given_name: 'Kim', family_name: 'Lee', date_of_birth: '1979-01-01', email: 'kim.lee@example.com' });
  reject.patient.address.lines = ['9 Dock Road'];
  const rejectId = await submit(reject, demo.test_key);
  await page.goto(`${base}/staff/prescriptions/${rejectId}?mode=test`);
  // Without a reason the form does not go (the field is required; the server refuses it too).
  assert.equal(await page.getByLabel('Reason for the decision').evaluate((e) => e.validity.valueMissing), true);
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const bare = await page.request.post(`${base}/staff/prescriptions/${rejectId}/decision?mode=test`, { form: { csrf, version: '1', decision: 'reject', reason: ' ' } });
  assert.equal(bare.status(), 422);
  assert.match(await bare.text(), /a reason is required/);
  await page.getByLabel('Reason for the decision').fill('Patient is under another provider');
  await page.getByRole('button', { name: 'Reject…' }).click();
  assert.ok(await page.getByRole('heading', { name: 'Confirm the rejection' }).isVisible());
  assert.ok(await page.getByText('Patient is under another provider').first().isVisible());
  assert.equal(await statusOf(rejectId), 'awaiting_clinical_check', 'nothing is recorded before the confirmation');
  await shot(page, 'confirm-reject');
  await page.getByRole('button', { name: 'Confirm rejection' }).click();
  assert.match(page.url(), new RegExp(`/staff/prescriptions/${rejectId}\\?mode=test$`));
  assert.equal(await statusOf(rejectId), 'rejected');
  await axe(page);
  await ctx.close();
});

test('the data set survives sign-in and every page says which one it shows', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/staff/prescriptions/${plainId}?mode=test`);
  assert.match(page.url(), /\/staff\/login\?mode=test$/);
  assert.ok(await page.getByText('SANDBOX — test data only').isVisible());
  await page.getByLabel('Email').fill(account('pharmacist').email);
  await page.getByLabel('Password').fill('the demo passphrase of the 10-letter role');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(page.url(), /\/staff\?mode=test$/);
  assert.match(await page.title(), /^SANDBOX · Search/);
  assert.ok(await page.getByText('SANDBOX — test data only').isVisible());
  for (const href of await page.getByRole('navigation', { name: 'Main' }).getByRole('link').evaluateAll((as) => as.map((a) => a.getAttribute('href')))) {
    assert.match(href, /mode=test/, `${href} keeps the data set`);
  }
  await page.getByRole('link', { name: 'switch' }).click();
  assert.match(page.url(), /\/staff\?mode=live$/);
  assert.equal(await page.getByText('SANDBOX — test data only').count(), 0);
  assert.doesNotMatch(await page.title(), /SANDBOX/);
  await axe(page);
  await ctx.close();
});

test('the demo administrator reaches webhooks, dead letters, staff and the audit trail; every page passes axe', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, 'admin');
  await page.goto(`${base}/staff?mode=test`);
  await page.getByRole('link', { name: 'Webhooks' }).click();
  assert.ok(await page.getByRole('heading', { name: /^Dead letters \(\d+\)$/ }).isVisible());
  assert.ok(await page.getByText('System settings: live and sandbox').isVisible());
  await axe(page);
  await page.getByRole('link', { name: 'Staff' }).click();
  assert.ok(await page.getByRole('cell', { name: 'admin@demo.rxbridge' }).isVisible());
  await axe(page);
  await page.getByRole('link', { name: 'Audit trail' }).click();
  await axe(page);
  await page.getByRole('link', { name: 'Registers' }).click();
  await axe(page);
  await page.getByRole('link', { name: 'POM register' }).click();
  await axe(page);
  await page.getByRole('link', { name: 'Finance' }).click();
  await axe(page);
  // Looks at a record are on the administrators' access log, not the timeline.
  await page.goto(`${base}/staff/prescriptions/${flaggedId}?mode=test`);
  await page.getByRole('link', { name: /^Access log \(\d+\)$/ }).click();
  assert.match(page.url(), /\/access\?mode=test$/, 'the access log is a tab of its own');
  const looks = page.locator('section[aria-labelledby=h-access] tbody tr');
  assert.ok((await looks.count()) >= 2);
  assert.match(await looks.first().innerText(), /pharmacist@demo\.rxbridge \(pharmacist\)\s+staff\.viewed_prescription/);
  await axe(page);
  await page.goto(`${base}/staff/search?mode=test&by=reference&q=NO-SUCH-REF`);
  await axe(page);
  await page.goto(`${base}/staff/prescriptions/rx_nope?mode=test`);
  assert.ok(await page.getByRole('heading', { name: 'Not found' }).isVisible());
  await axe(page);
  await ctx.close();
});
