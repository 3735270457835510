// The admin console end to end, as a new user meets it: `userhub serve` in local mode (no
// Clerk keys: the embedded emulator, the demo directory, the admin token filled in), Debian's
// Chromium with no network but userhub. Invite a user, see the invitation, accept it in the
// emulator, watch the user arrive live without a reload, change their role, remove them, run a
// sync to the end of its progress bar, check the status report; then the same views at a phone's
// width. Screenshots go to artifacts/admin/.
//
//   USERHUB_BIN=../target/debug/userhub node --test admin/

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launch, layoutProblems, openPage } from '../lib/browser.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.USERHUB_BIN ?? join(here, '..', '..', 'target', 'debug', 'userhub'));
const artifacts = join(here, '..', '..', 'artifacts', 'admin');
const INVITEE = 'new.lecturer@university.test';

let server;
let origin;
let adminToken;
let browser;
let directory;
const logs = [];

/** Starts local mode and reads its address and admin token from the banner it prints. */
function startLocalMode() {
  directory = mkdtempSync(join(tmpdir(), 'userhub-admin-'));
  const env = { ...process.env, DATABASE_URL: `sqlite://${join(directory, 'userhub.db')}?mode=rwc`, USERHUB_LISTEN: '127.0.0.1:0' };
  for (const name of ['CLERK_SECRET_KEY', 'CLERK_WEBHOOK_SECRET', 'CLERK_API_URL', 'CLERK_JWKS_URL', 'CLERK_JWT_KEY']) delete env[name];
  server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`local mode did not start in 60 s:\n${logs.join('\n')}`)), 60_000);
    const read = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        logs.push(line);
        const address = line.match(/GraphiQL:\s+(http:\/\/127\.0\.0\.1:\d+)\/graphql/);
        if (address) origin = address[1];
        const token = line.match(/Admin token:\s+(\S+)/);
        if (token) adminToken = token[1];
        if (origin && adminToken) {
          clearTimeout(timer);
          done();
        }
      }
    };
    server.stdout.on('data', read);
    server.stderr.on('data', read);
    server.on('exit', (code) => fail(new Error(`userhub exited with ${code}:\n${logs.join('\n')}`)));
  });
}

async function graphql(query, variables = {}) {
  const response = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function userByEmail(email) {
  const data = await graphql(`query ($search: String!) { users(first: 5, filter: { search: $search }) {
    nodes { email role isActive isSuspended organisation { name } } } }`, { search: email });
  return data.users.nodes.find((user) => user.email === email);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  await startLocalMode();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (directory) rmSync(directory, { recursive: true, force: true });
});

test('the admin console at 1280×800: invite, accept, live arrival, role change, removal, sync, status', async () => {
  const { page, blocked, errors } = await openPage(browser, origin, { width: 1280, height: 800 });
  const usersQueries = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/graphql') && /query Users/.test(request.postData() || '')) {
      usersQueries.push(Date.now());
    }
  });

  const response = await page.goto(`${origin}/admin`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'], /default-src 'self'/);

  // Signed in with the printed admin token, without typing it.
  await page.locator('#whoami-name').filter({ hasText: 'Local Admin' }).waitFor();
  assert.equal(await page.locator('#whoami .badge').textContent(), 'Admin');
  await page.locator('#live[data-state="live"]').waitFor();
  await page.locator('#users-table tbody tr[data-user-id]').first().waitFor();
  assert.match(await page.locator('#user-count').textContent(), /^3[0-9] users$/);
  assert.deepEqual(await page.locator('#nav a').allTextContents(), ['Users', 'Invitations', 'Organisations', 'Dashboard', 'Workload', 'Import/Export', 'Sync', 'Audit']);

  // Filters: the demo directory's org admins of one organisation.
  await page.locator('#filter-role').selectOption('ORG_ADMIN');
  await page.locator('#user-count').filter({ hasText: /^3 users$/ }).waitFor();
  await page.locator('#filter-organisation').selectOption({ label: 'School of Computing' });
  await page.locator('#user-count').filter({ hasText: /^1 user$/ }).waitFor();
  assert.match(page.url(), /role=ORG_ADMIN/);
  await page.locator('#filter-role').selectOption('');
  await page.locator('#filter-organisation').selectOption('');
  await page.locator('#user-count').filter({ hasText: /^3[0-9] users$/ }).waitFor();
  await page.screenshot({ path: join(artifacts, 'users.png'), fullPage: true });

  // An empty invitation is refused where it was asked for.
  await page.locator('#invite-submit').click();
  await page.locator('#invite-results .error').filter({ hasText: 'Enter at least one email address.' }).waitFor();

  // Invite: Clerk (the emulator) records the invitation; the page lists it as pending.
  await page.locator('#invite-emails').fill(INVITEE);
  await page.locator('#invite-role').selectOption('LECTURER');
  await page.locator('#invite-organisation').selectOption({ label: 'School of Computing' });
  await page.locator('#invite-submit').click();
  await page.locator('#invite-results .ok').filter({ hasText: `✓ ${INVITEE}: invitation sent` }).waitFor();
  const pending = page.locator(`#pending-invitations li[data-email="${INVITEE}"]`);
  await pending.waitFor();
  assert.match(await pending.textContent(), /Lecturer.*School of Computing/);
  // Inviting the same address again is refused, in words, beside the form.
  await page.locator('#invite-emails').fill(INVITEE);
  await page.locator('#invite-submit').click();
  await page.locator('#invite-results .error').filter({ hasText: INVITEE }).waitFor();
  assert.equal(await page.locator('#invite-emails').inputValue(), INVITEE, 'the refused address stays, to fix');
  await page.locator('#invite-emails').fill('');

  // Accept it in the emulator; the user must appear by the live event, not by reading the page again.
  await page.evaluate(() => { window.notReloaded = true; });
  const queriesBefore = usersQueries.length;
  await pending.getByRole('button', { name: 'Accept as invitee' }).click();
  const row = page.locator(`#users-table tr[data-email="${INVITEE}"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.locator('.hint').textContent(), /joined from Clerk/);
  await page.screenshot({ path: join(artifacts, 'users-live.png') });
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
  assert.equal(usersQueries.length, queriesBefore, 'the user list was not fetched again');
  assert.equal(await row.locator('.role-select').inputValue(), 'LECTURER');
  assert.equal(await row.locator('.organisation-select option:checked').textContent(), 'School of Computing');
  await pending.waitFor({ state: 'detached' });
  assert.deepEqual(await userByEmail(INVITEE), {
    email: INVITEE, role: 'LECTURER', isActive: true, isSuspended: false, organisation: { name: 'School of Computing' },
  });

  // Change the role.
  await row.locator('.role-select').selectOption('ORG_ADMIN');
  await row.locator('.hint').filter({ hasText: 'role Lecturer → Org admin in userhub' }).waitFor();
  assert.equal((await userByEmail(INVITEE)).role, 'ORG_ADMIN');

  // Suspend, then unsuspend.
  await row.getByRole('button', { name: 'Suspend' }).click();
  await page.locator('#confirm-ok').click();
  await row.locator('.badge.status-suspended').waitFor();
  assert.equal((await userByEmail(INVITEE)).isSuspended, true);
  await row.getByRole('button', { name: 'Unsuspend' }).click();
  await row.locator('.badge.status-active').waitFor();

  // Remove, with a confirmation that can be declined.
  await row.getByRole('button', { name: 'Remove' }).click();
  await page.locator('#confirm-cancel').click();
  assert.equal((await userByEmail(INVITEE)).isActive, true, 'declining the confirmation removes nobody');
  await row.getByRole('button', { name: 'Remove' }).click();
  assert.match(await page.locator('#confirm-text').textContent(), new RegExp(INVITEE.replace(/\./g, '\\.')));
  await page.locator('#confirm-ok').click();
  await row.locator('.badge.status-removed').waitFor();
  assert.equal(await row.getByRole('button', { name: 'Remove' }).count(), 0, 'a removed user has no actions left');
  assert.equal((await userByEmail(INVITEE)).isActive, false);

  // The user's trail, from their row.
  await row.getByRole('link', { name: 'History' }).click();
  await page.locator('h1').filter({ hasText: `History of ${INVITEE}` }).waitFor();
  await page.locator('#audit-table tr[data-action="user.deactivated"]').waitFor();
  const actions = await page.locator('#audit-table tbody tr').evaluateAll((rows) => rows.map((tr) => tr.dataset.action));
  for (const action of ['user.created', 'user.role_changed', 'user.suspended', 'user.unsuspended', 'user.deactivated']) {
    assert.ok(actions.includes(action), `${action} in ${actions}`);
  }
  await page.screenshot({ path: join(artifacts, 'audit.png'), fullPage: true });

  // Sync: the progress bar runs to the end, fed by the syncProgress subscription.
  await page.locator('#nav a', { hasText: 'Sync' }).click();
  await page.locator('#sync-start').click();
  await page.locator('#sync-progress[data-status="SUCCEEDED"][aria-valuenow="100"]').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('#sync-label').textContent(), /^Finished .*: 3[0-9] of 3[0-9] Clerk users read/);
  assert.equal(await page.locator('#sync-bar').evaluate((bar) => bar.style.width), '100%');

  // Check status: after the sync, Clerk and userhub agree.
  await page.locator('#sync-check').click();
  await page.locator('#sync-verdict').waitFor();
  assert.equal(await page.locator('#sync-verdict').textContent(), '✓ userhub and Clerk agree.');
  assert.equal(await page.locator('.drift-count').allTextContents().then((counts) => counts.join(',')), '0,0,0,0');
  await page.screenshot({ path: join(artifacts, 'sync.png'), fullPage: true });

  // Organisations: member counts, create, rename, archive.
  await page.locator('#nav a', { hasText: 'Organisations' }).click();
  await page.locator('#organisations-table tr[data-name="School of Computing"] .members').waitFor();
  assert.equal(await page.locator('#organisations-table tr[data-name="School of Computing"] .members').textContent(), '12');
  await page.locator('#organisation-name').fill('School of Physics');
  await page.locator('#create-organisation button[type="submit"]').click();
  const physics = page.locator('#organisations-table tr[data-name="School of Physics"]');
  await physics.waitFor();
  await physics.getByRole('button', { name: 'Rename' }).click();
  await physics.locator('input').fill('School of Physics and Astronomy');
  await physics.getByRole('button', { name: 'Save' }).click();
  const renamed = page.locator('#organisations-table tr[data-name="School of Physics and Astronomy"]');
  await renamed.waitFor();
  // Archiving one with members is refused beside it, in words.
  const computing = page.locator('#organisations-table tr[data-name="School of Computing"]');
  await computing.getByRole('button', { name: 'Archive' }).click();
  await page.locator('#confirm-ok').click();
  await computing.locator('.row-error .error').filter({ hasText: /still has 12 active user/ }).waitFor();
  await renamed.getByRole('button', { name: 'Archive' }).click();
  await page.locator('#confirm-ok').click();
  await renamed.waitFor({ state: 'detached' });
  await page.locator('#include-archived').check();
  await page.locator('#organisations-table tr[data-name="School of Physics and Astronomy"] .badge').filter({ hasText: 'Archived' }).waitFor();
  await page.screenshot({ path: join(artifacts, 'organisations.png'), fullPage: true });

  for (const view of ['users', 'invitations', 'organisations', 'dashboard', 'workload', 'import', 'sync', 'audit']) {
    await page.goto(`${origin}/admin/${view}`);
    await page.locator('#live[data-state="live"]').waitFor();
    await page.waitForLoadState('networkidle');
    assert.deepEqual(await layoutProblems(page), [], `layout of ${view} at 1280×800`);
  }
  assert.deepEqual(blocked, [], 'nothing was fetched from outside userhub');
  assert.deepEqual(errors, [], 'no script errors');
});

test('the dashboard and the workload: counts, allocation, profile, live totals', async () => {
  const { page, blocked, errors } = await openPage(browser, origin, { width: 1280, height: 800 });
  const found = await graphql(`{ organisations(first: 5, filter: { search: "Computing" }) { nodes { id name } } }`);
  const computing = found.organisations.nodes.find((org) => org.name === 'School of Computing');
  const members = await graphql(`query ($org: ID!) { users(first: 100, orderBy: EMAIL_ASC, filter: { organisationId: $org, isActive: true }) { nodes { id email fullName role } } }`, { org: computing.id });
  const [first, second] = members.users.nodes.filter((user) => user.role !== 'ORG_ADMIN' && user.role !== 'ADMIN');

  // The dashboard: counts at once.
  await page.goto(`${origin}/admin/dashboard?org=${computing.id}`);
  await page.locator('#live[data-state="live"]').waitFor();
  await page.locator('#stat-members .stat-value').waitFor();
  assert.match(await page.locator('#stat-members .stat-value').textContent(), /^\d+$/);
  assert.equal(await page.locator('#sign-in-weeks .week').count(), 8);
  await page.locator('#dashboard-workload').filter({ hasText: 'Nobody is over-allocated.' }).waitFor();

  // Allocated elsewhere (the API, as another admin would): the dashboard counts it again live.
  await graphql(`mutation ($id: ID!) { updateLecturerProfile(userId: $id, input: { workloadTargetHours: 100 }) { id } }`, { id: first.id });
  await graphql(`mutation ($id: ID!) { allocateActivity(userId: $id, input: { academicYear: "${currentYear()}", kind: TEACHING, moduleCode: "CS101", name: "Programming lectures", hours: 130 }) { activity { id } } }`, { id: first.id });
  await page.locator('#dashboard-workload').filter({ hasText: '1 over-allocated' }).waitFor({ timeout: 10_000 });
  await page.locator('#dashboard-workload li').filter({ hasText: first.fullName }).waitFor();
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });

  // The workload: allocate from the form, open a person, record their FTE.
  await page.goto(`${origin}/admin/workload?org=${computing.id}`);
  await page.locator(`#workload-people tr[data-user-id="${first.id}"]`).waitFor();
  await page.locator('#allocate-person').selectOption(second.id);
  await page.locator('#allocate-kind').selectOption('ASSESSMENT');
  await page.locator('#allocate-code').fill('cs102');
  await page.locator('#allocate-name').fill('Coursework marking');
  await page.locator('#allocate-term').fill('Spring');
  await page.locator('#allocate-hours').fill('42.5');
  await page.locator('#allocate-submit').click();
  const row = page.locator(`#workload-people tr[data-user-id="${second.id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /42\.5/);
  await page.locator('#person-activities').filter({ hasText: 'CS102' }).waitFor();
  await page.locator('#profile-fte').fill('0.5');
  await page.locator('#profile-job-title').fill('Senior Lecturer');
  await page.locator('#profile-department').fill('Software Engineering');
  await page.locator('#profile-contract-start').fill('2026-09-01');
  await page.locator('#profile-contract-end').fill('2029-08-31');
  await page.locator('#profile-save').click();
  await row.filter({ hasText: '825' }).waitFor();
  await row.locator('.badge.balance-under').waitFor();
  assert.match(await page.locator('#workload-summary').textContent(), /1 over/);
  await page.screenshot({ path: join(artifacts, 'workload.png'), fullPage: true });
  const stored = await graphql(`query ($id: ID!) { user(id: $id) { profile { contractFte jobTitle department contractStart contractEnd } workload { allocatedHours targetHours balance activities { moduleCode term } } } }`, { id: second.id });
  assert.deepEqual(stored.user, {
    profile: { contractFte: 0.5, jobTitle: 'Senior Lecturer', department: 'Software Engineering', contractStart: '2026-09-01', contractEnd: '2029-08-31' },
    workload: { allocatedHours: 42.5, targetHours: 825, balance: 'UNDER', activities: [{ moduleCode: 'CS102', term: 'Spring' }] },
  });
  assert.deepEqual(blocked, []);
  assert.deepEqual(errors, []);
});

test('import and export: download the users, check a file, import it and follow it to the end', async () => {
  const { page, blocked, errors } = await openPage(browser, origin, { width: 1280, height: 800 });
  await page.goto(`${origin}/admin/import`);
  await page.locator('#live[data-state="live"]').waitFor();

  // The users as CSV, downloaded with the session.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-users').click()]);
  assert.match(download.suggestedFilename(), /^users-\d{4}-\d{2}-\d{2}\.csv$/);
  const exported = readFileSync(await download.path(), 'utf8');
  assert.match(exported, /^id,email,first_name,last_name,role,organisation_id,organisation_slug,/);

  // A file: two new people, one already here (a new staff id), one line that is no address.
  const found = await graphql(`{ users(first: 1, orderBy: EMAIL_ASC, filter: { role: LECTURER, isActive: true }) { nodes { id email } } }`);
  const known = found.users.nodes[0];
  const csv = [
    'email,first_name,last_name,role,organisation_slug,staff_id',
    'grace.hopper@university.test,Grace,Hopper,LECTURER,,',
    'alan.turing@university.test,Alan,Turing,MEMBER,,',
    `${known.email},,,,,IMP-001`,
    'not an address,,,,,',
  ].join('\n');
  await page.locator('#import-file').setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.waitForFunction(() => document.querySelector('#import-text').value.includes('grace.hopper'));
  await page.locator('#import-check').click();
  await page.locator('#import-summary').filter({ hasText: 'Checked: 4 lines: 3 would change, 0 unchanged, 1 refused.' }).waitFor();
  const outcomes = await page.locator('#import-table tbody tr').evaluateAll((rows) => rows.map((row) => row.dataset.outcome));
  assert.deepEqual(outcomes, ['WOULD_CHANGE', 'WOULD_CHANGE', 'WOULD_CHANGE', 'REFUSED']);
  assert.match(await page.locator('#import-table tbody tr[data-outcome="REFUSED"]').textContent(), /not an email address/);
  assert.equal((await graphql(`{ invitations(first: 1, filter: { search: "grace.hopper" }) { totalCount } }`)).invitations.totalCount, 0);

  // The import: followed live to its end.
  await page.locator('#import-run').click();
  await page.locator('#import-summary[data-status="SUCCEEDED"]').filter({ hasText: 'Imported' }).waitFor({ timeout: 20_000 });
  assert.match(await page.locator('#import-summary').textContent(), /4 of 4 lines: 3 done, 0 unchanged, 1 refused/);
  await page.locator('#import-only-refused').check();
  assert.equal(await page.locator('#import-table tbody tr').count(), 1);
  await page.locator('#import-only-refused').uncheck();
  await page.screenshot({ path: join(artifacts, 'import.png'), fullPage: true });
  const invited = await graphql(`{ invitations(first: 5, filter: { status: PENDING, search: "university.test" }) { nodes { email role } } }`);
  const byEmail = Object.fromEntries(invited.invitations.nodes.map((node) => [node.email, node.role]));
  assert.equal(byEmail['grace.hopper@university.test'], 'LECTURER');
  assert.equal(byEmail['alan.turing@university.test'], 'MEMBER');
  const profile = await graphql(`query ($id: ID!) { user(id: $id) { profile { staffId } } }`, { id: known.id });
  assert.equal(profile.user.profile.staffId, 'IMP-001');
  assert.equal(await page.locator('#import-run').isDisabled(), true, 'one check imports once');
  assert.deepEqual(blocked, []);
  assert.deepEqual(errors, []);
});

function currentYear(now = new Date()) {
  const first = now.getUTCMonth() >= 8 ? now.getUTCFullYear() : now.getUTCFullYear() - 1;
  return `${first}/${String((first + 1) % 100).padStart(2, '0')}`;
}

test('the admin console at a phone width: nothing overlaps or spills over', async () => {
  const { page, blocked, errors } = await openPage(browser, origin, { width: 390, height: 844 });
  for (const view of ['users', 'invitations', 'organisations', 'dashboard', 'workload', 'import', 'sync', 'audit']) {
    await page.goto(`${origin}/admin/${view}`);
    await page.locator('#live[data-state="live"]').waitFor();
    await page.waitForLoadState('networkidle');
    assert.deepEqual(await layoutProblems(page), [], `layout of ${view} at 390×844`);
    if (['users', 'dashboard', 'workload', 'import'].includes(view)) {
      await page.screenshot({ path: join(artifacts, `${view}-phone.png`), fullPage: true });
    }
  }
  assert.deepEqual(blocked, []);
  assert.deepEqual(errors, []);
});

test('the console without a token asks for one and says why a bad one is refused', async () => {
  const { page, errors } = await openPage(browser, origin, { width: 1280, height: 800 });
  await page.goto(`${origin}/admin`);
  await page.locator('#whoami-name').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#token').waitFor();
  assert.equal(await page.locator('#nav').isHidden(), true);
  await page.locator('#token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('.signin .error').filter({ hasText: 'UNAUTHENTICATED' }).waitFor();
  // Signed out stays signed out across a reload, until the local token is chosen again.
  await page.reload();
  await page.locator('#token').waitFor();
  await page.getByRole('button', { name: 'Use the local admin token' }).click();
  await page.locator('#whoami-name').filter({ hasText: 'Local Admin' }).waitFor();
  assert.deepEqual(errors.filter((message) => !/401|Failed to load resource/.test(message)), []);
});
