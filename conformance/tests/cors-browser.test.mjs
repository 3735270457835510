// CORS in a real browser: a frontend page served from another origin (as a Next.js app on
// localhost:3000 calls userhub on :8000) runs Apollo Client in Chromium against userhub, over
// HTTP and over the WebSocket. From the origin userhub allows it reads answers and live
// changes; from an origin it does not allow, the browser refuses to hand it any answer.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

import { launch } from '../lib/browser.mjs';
import { adminToken, graphql, graphqlUrl, userhubUrl, websocketUrl } from '../lib/userhub.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const allowedOrigin = process.env.FRONTEND_ORIGIN;

/** Serves the frontend (a page and the bundled Apollo Client) on `port`. */
async function frontend(port, bundle) {
  const server = createServer((request, response) => {
    if (request.url === '/apollo.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(bundle);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>frontend</title><script src="/apollo.js"></script>');
    }
  });
  await new Promise((done) => server.listen(port, '127.0.0.1', done));
  return server;
}

/** Chromium on `origin`, with the network closed to everything but it and userhub. */
async function pageAt(browser, origin) {
  const context = await browser.newContext();
  const allowed = new Set([origin, new URL(userhubUrl).origin]);
  await context.route('**/*', (route) => {
    if (allowed.has(new URL(route.request().url()).origin)) return route.continue();
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  await page.waitForFunction(() => typeof window.connectUserhub === 'function');
  return { page, consoleErrors };
}

test('Apollo Client on an allowed origin reads over HTTP and the WebSocket; another origin reads nothing', async () => {
  assert.ok(allowedOrigin, 'run.mjs names the allowed frontend origin');
  const { outputFiles } = await build({
    entryPoints: [join(here, '..', 'browser', 'apollo.mjs')],
    bundle: true,
    format: 'iife',
    write: false,
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const bundle = outputFiles[0].text;
  const allowedPort = Number(new URL(allowedOrigin).port);
  const servers = [await frontend(allowedPort, bundle), await frontend(0, bundle)];
  // An origin userhub was not told of: 127.0.0.1 is not `localhost` to a browser.
  const otherOrigin = `http://127.0.0.1:${servers[1].address().port}`;
  const browser = await launch();
  try {
    const { page } = await pageAt(browser, allowedOrigin);
    const me = await page.evaluate(
      async ({ httpUrl, wsUrl, token }) => {
        const { client, gql } = window.connectUserhub({ httpUrl, wsUrl, token });
        const { data } = await client.query({ query: gql`{ me { email role } }` });
        return data.me;
      },
      { httpUrl: graphqlUrl, wsUrl: websocketUrl, token: adminToken },
    );
    assert.deepEqual({ ...me }, { __typename: 'User', email: 'conformance.admin@userhub.test', role: 'ADMIN' });

    // A live change over the WebSocket, made from outside the page.
    await page.evaluate(
      ({ httpUrl, wsUrl, token }) => {
        const { client, gql } = window.connectUserhub({ httpUrl, wsUrl, token });
        window.changes = [];
        client
          .subscribe({ query: gql`subscription { userChanged { kind user { email firstName } } }` })
          .subscribe({ next: ({ data }) => window.changes.push(data.userChanged), error: (err) => window.changes.push({ error: String(err) }) });
      },
      { httpUrl: graphqlUrl, wsUrl: websocketUrl, token: adminToken },
    );
    const { users } = await graphql('{ users(first: 1, filter: { search: "conformance.admin" }) { nodes { id } } }');
    const id = users.nodes[0].id;
    let change;
    for (let attempt = 0; attempt < 50 && !change; attempt += 1) {
      await graphql('mutation ($id: ID!, $name: String) { updateUser(id: $id, input: { firstName: $name }) { id } }', {
        id,
        name: `Cors${attempt}`,
      });
      await new Promise((done) => setTimeout(done, 100));
      change = await page.evaluate(() => window.changes.find((c) => c.user?.firstName?.startsWith('Cors')) ?? null);
    }
    // Other tests know the admin by name.
    await graphql('mutation ($id: ID!) { updateUser(id: $id, input: { firstName: "Conformance" }) { id } }', { id });
    assert.ok(change, 'the page heard the change over the WebSocket');
    assert.equal(change.user.email, 'conformance.admin@userhub.test');

    // The same page from an origin userhub does not allow: the browser gives it nothing.
    const other = await pageAt(browser, otherOrigin);
    const refused = await other.page.evaluate(
      async ({ httpUrl, wsUrl, token }) => {
        const { client, gql } = window.connectUserhub({ httpUrl, wsUrl, token });
        try {
          await client.query({ query: gql`{ me { email } }` });
          return 'answered';
        } catch (error) {
          return String(error.message);
        }
      },
      { httpUrl: graphqlUrl, wsUrl: websocketUrl, token: adminToken },
    );
    assert.match(refused, /fetch/i, `refused: ${refused}`);
    assert.ok(
      other.consoleErrors.some((message) => /CORS|Access-Control-Allow-Origin/.test(message)),
      `the browser says why: ${other.consoleErrors.join(' | ')}`,
    );
  } finally {
    await browser.close();
    for (const server of servers) server.close();
  }
});
