// GraphiQL in a real browser: Debian's Chromium driven by playwright-core opens GET /graphql
// with every request to anywhere but userhub refused, types a query and the session token into
// the page's editors, runs it, and reads the result pane. A screenshot goes to
// artifacts/conformance/graphiql.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launch } from '../lib/browser.mjs';
import { adminToken, graphqlUrl, userhubUrl } from '../lib/userhub.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'artifacts', 'conformance');

/** Replaces the text of the CodeMirror editor inside `container` as a person would: click, select all, type. */
async function fill(page, container, text) {
  const editor = page.locator(`${container} .CodeMirror`).filter({ visible: true }).first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText types the whole string as one input, so the editor's bracket auto-closing does
  // not double the braces a key-by-key typist would get.
  await page.keyboard.insertText(text);
}

test('GraphiQL runs a query in Chromium with no network but userhub', async () => {
  mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const blocked = [];
  const pageErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const origin = new URL(userhubUrl).origin;
    // The network is closed: only userhub itself answers.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin) return route.continue();
      blocked.push(url);
      return route.abort('internetdisconnected');
    });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));

    const response = await page.goto(graphqlUrl, { waitUntil: 'networkidle' });
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'], /text\/html/);
    await page.locator('.graphiql-query-editor .CodeMirror').first().waitFor({ timeout: 15_000 });

    // The session token goes into the headers editor.
    await page.getByRole('button', { name: 'Headers' }).click();
    await fill(page, '.graphiql-editor-tool', JSON.stringify({ Authorization: `Bearer ${adminToken}` }));

    await fill(
      page,
      '.graphiql-query-editor',
      '{ me { email role fullName } users(first: 3) { totalCount nodes { email organisation { name } } } }',
    );
    await page.getByRole('button', { name: /Prettify query/ }).click();
    await page.locator('.graphiql-execute-button').click();

    const result = page.locator('.result-window');
    await result.getByText('conformance.admin@userhub.test').first().waitFor({ timeout: 15_000 });
    // The editor renders only the lines in view; its own value is the whole pane.
    const shown = await result.locator('.CodeMirror').first().evaluate((node) => node.CodeMirror.getValue());
    const parsed = JSON.parse(shown);
    assert.deepEqual(parsed.data.me, {
      email: 'conformance.admin@userhub.test',
      role: 'ADMIN',
      fullName: 'Conformance Admin',
    });
    assert.ok(parsed.data.users.totalCount >= 1);
    assert.equal(parsed.errors, undefined);

    await page.screenshot({ path: join(artifacts, 'graphiql.png') });
    console.log(`screenshot: ${join(artifacts, 'graphiql.png')}`);
  } finally {
    await browser.close();
  }
  assert.deepEqual(blocked, [], 'GraphiQL asked for something outside userhub');
  assert.deepEqual(pageErrors, [], 'the page threw');
});
