// The admin console follows the caller's role: an organisation admin and a lecturer sign in by
// pasting their Clerk session token, and see only their organisation and only the controls they
// may use; the views they may not use are absent, and the API refuses anyway. Run by run.mjs
// (a userhub wired to the Clerk emulator, not local mode).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch, layoutProblems, openPage } from '../lib/browser.mjs';
import { clerkUser, emulator, graphql, userByEmail, userhubUrl } from '../lib/userhub.mjs';

let browser;
let organisation;
let orgAdmin;
let lecturer;
let outsider;

async function tokenFor(user) {
  const { jwt } = await emulator('POST', '/__emulator/session_tokens', { user_id: user.clerkId, ttl_seconds: 600 });
  return jwt;
}

async function signIn(token) {
  const opened = await openPage(browser, new URL(userhubUrl).origin, { width: 1280, height: 800 });
  const { page } = opened;
  await page.goto(`${userhubUrl}/admin`);
  // Not local mode: nobody is signed in until they paste a token.
  await page.locator('#token').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Use the local admin token' }).count(), 0);
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#whoami-name').waitFor();
  await page.locator('#users-table tbody tr[data-user-id]').first().waitFor();
  return opened;
}

before(async () => {
  const created = await graphql('mutation { createOrganisation(input: { name: "Department of Roles" }) { id name } }');
  organisation = created.createOrganisation;
  const other = await graphql('mutation { createOrganisation(input: { name: "Department of Others" }) { id } }');
  orgAdmin = await clerkUser('Olive', { role: 'org_admin', organisationId: organisation.id });
  lecturer = await clerkUser('Leo', { role: 'lecturer', organisationId: organisation.id });
  outsider = await clerkUser('Otto', { role: 'lecturer', organisationId: other.createOrganisation.id });
  for (const person of [orgAdmin, lecturer, outsider]) await userByEmail(person.email);
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('an organisation admin sees their organisation only, and only what they may do', async () => {
  const { page, blocked, errors } = await signIn(await tokenFor(orgAdmin));
  assert.equal(await page.locator('#whoami .badge').textContent(), 'Org admin');
  assert.deepEqual(await page.locator('#nav a').allTextContents(), ['Users', 'Invitations', 'Organisations', 'Dashboard', 'Workload', 'Import/Export']);

  // Their organisation's users, and no organisation filter to look elsewhere.
  const emails = await page.locator('#users-table tbody tr').evaluateAll((rows) => rows.map((row) => row.dataset.email).sort());
  assert.deepEqual(emails, [lecturer.email, orgAdmin.email].sort());
  assert.equal(await page.locator('#filter-organisation').count(), 0);

  // Invitations into their organisation only, never as admins.
  const roles = await page.locator('#invite-role option').evaluateAll((options) => options.map((option) => option.value));
  assert.deepEqual(roles, ['ORG_ADMIN', 'LECTURER', 'MEMBER']);
  assert.equal(await page.locator('#invite-organisation').count(), 0);
  assert.match(await page.locator('#invite-form').textContent(), /Into Department of Roles/);

  // Managing their lecturer: role yes, organisation no, history (the audit log) no.
  const row = page.locator(`#users-table tr[data-email="${lecturer.email}"]`);
  assert.equal(await row.locator('.organisation-select').count(), 0);
  assert.equal(await row.getByRole('link', { name: 'History' }).count(), 0);
  await row.locator('.role-select').selectOption('MEMBER');
  await row.locator('.hint').filter({ hasText: 'role Lecturer → Member in userhub' }).waitFor();
  assert.equal((await userByEmail(lecturer.email)).role, 'MEMBER');

  // Organisations: their own, read-only.
  await page.locator('#nav a', { hasText: 'Organisations' }).click();
  await page.locator('#organisations-table tr[data-name="Department of Roles"]').waitFor();
  assert.equal(await page.locator('#organisations-table tbody tr').count(), 1);
  assert.equal(await page.locator('#create-organisation').count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Rename' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Archive' }).count(), 0);

  // Their dashboard and workload: their organisation only.
  await page.locator('#nav a', { hasText: 'Dashboard' }).click();
  await page.locator('#stat-members .stat-value').waitFor();
  assert.deepEqual(await page.locator('#dashboard-organisation option').allTextContents(), ['Department of Roles']);
  assert.equal(await page.locator('#stat-members .stat-value').textContent(), '2');
  await page.locator('#nav a', { hasText: 'Workload' }).click();
  await page.locator('#workload-summary').filter({ hasText: 'allocated' }).waitFor();
  const people = await page.locator('#allocate-person option').allTextContents();
  assert.equal(people.length, 2, `${people}`);

  // Import/Export: their organisation's users to download, no audit log.
  await page.locator('#nav a', { hasText: 'Import/Export' }).click();
  await page.locator('#export-users').waitFor();
  assert.equal(await page.locator('#export-audit').count(), 0);

  // A view they may not use, opened by its address, falls back to the users.
  await page.goto(`${userhubUrl}/admin/sync`);
  await page.locator('#users-table').waitFor();
  assert.equal(new URL(page.url()).pathname, '/admin/users');
  assert.deepEqual(await layoutProblems(page), []);
  assert.deepEqual(blocked, []);
  assert.deepEqual(errors, []);
});

test('a member reads their organisation and has nothing to press', async () => {
  const { page, errors } = await signIn(await tokenFor(lecturer));
  // A member now: the organisation admin changed their role in the test before.
  assert.equal(await page.locator('#whoami .badge').textContent(), 'Member');
  assert.deepEqual(await page.locator('#nav a').allTextContents(), ['Users', 'Organisations']);
  assert.equal(await page.locator('#invite-form').count(), 0);
  assert.equal(await page.locator('#users-table select, #users-table button').count(), 0);
  const emails = await page.locator('#users-table tbody tr').evaluateAll((rows) => rows.map((row) => row.dataset.email).sort());
  assert.deepEqual(emails, [lecturer.email, orgAdmin.email].sort());
  assert.deepEqual(errors, []);
});

test('outside local mode there is no stand-in for the invitee', async () => {
  const response = await fetch(`${userhubUrl}/admin/local/invitations/inv_123/accept`, { method: 'POST' });
  assert.equal(response.status, 404);
  const body = await response.json();
  assert.equal(body.error.code, 'NOT_FOUND');
  assert.match(body.error.message, /local mode only/);
});
