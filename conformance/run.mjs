// Starts what the conformance tests talk to — a Clerk emulator and a userhub server wired to
// it, on a fresh PostgreSQL database (or a temporary SQLite file when no PostgreSQL is given) —
// then runs every `tests/*.test.mjs` with node's test runner against them, and tears it all
// down. Exit code: the test runner's, or 2 when the servers could not be started.
//
//   node run.mjs [test files...]
//
// Environment:
//   USERHUB_BIN        the userhub binary (default ../target/debug/userhub)
//   TEST_DATABASE_URL  a PostgreSQL server to create the database on (default: SQLite)
//   KEEP_LOGS=1        print the servers' logs even when the tests pass
//
// userhub allows one browser origin (USERHUB_CORS_ORIGINS), on a port free at start, which the
// CORS test serves its frontend from (FRONTEND_ORIGIN).

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(process.env.USERHUB_BIN ?? join(here, '..', 'target', 'debug', 'userhub'));
const children = [];
const logs = [];
let cleanup = () => {};

function fail(message) {
  console.error(`conformance: ${message}`);
  for (const line of logs) console.error(line);
  shutdown();
  process.exit(2);
}

function shutdown() {
  for (const child of children) {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  cleanup();
}

/** Starts `userhub ARGS` and resolves with the first `http://127.0.0.1:PORT...` its output names. */
function start(name, args, env, pattern) {
  return new Promise((resolveAddress, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, USERHUB_LOG_FORMAT: 'json', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
    const onData = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        logs.push(`[${name}] ${line}`);
        const match = line.match(pattern);
        if (match) {
          clearTimeout(timer);
          resolveAddress(match[1]);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(new Error(`${name}: ${err.message} (${bin})`)));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}`));
    });
  });
}

function database() {
  const server = process.env.TEST_DATABASE_URL;
  if (!server) {
    const dir = mkdtempSync(join(tmpdir(), 'userhub-conformance-'));
    cleanup = () => rmSync(dir, { recursive: true, force: true });
    return `sqlite://${join(dir, 'userhub.db')}?mode=rwc`;
  }
  const name = `userhub_conformance_${process.pid}`;
  const psql = (sql) =>
    spawnSync('psql', ['-v', 'ON_ERROR_STOP=1', '-q', '-d', server, '-c', sql], { encoding: 'utf8' });
  const created = psql(`CREATE DATABASE ${name}`);
  if (created.status !== 0) fail(`cannot create database ${name}: ${created.stderr || created.error}`);
  cleanup = () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

async function emulatorCall(emulator, secret, method, path, body) {
  const response = await fetch(`${emulator}${path}`, {
    method,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** A port free now, for a server a test starts later. */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function main() {
  // The browser frontend of the CORS test: its origin is the one userhub allows.
  const frontendOrigin = `http://localhost:${await freePort()}`;
  const secret = `sk_test_conformance_${randomBytes(12).toString('hex')}`;
  const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const databaseUrl = database();

  const api = await start(
    'emulator',
    ['clerk-emulator', '--emulator-listen', '127.0.0.1:0'],
    { CLERK_SECRET_KEY: secret },
    /Clerk emulator on (http:\/\/127\.0\.0\.1:\d+\/v1)/,
  );
  const emulator = api.replace(/\/v1$/, '');
  const server = await start(
    'userhub',
    ['serve'],
    {
      DATABASE_URL: databaseUrl,
      USERHUB_LISTEN: '127.0.0.1:0',
      CLERK_SECRET_KEY: secret,
      CLERK_API_URL: api,
      CLERK_WEBHOOK_SECRET: webhookSecret,
      USERHUB_CORS_ORIGINS: frontendOrigin,
    },
    /userhub listening on (http:\/\/127\.0\.0\.1:\d+)/,
  );
  const ready = await fetch(`${server}/readyz`);
  if (!ready.ok) fail(`userhub is not ready: ${ready.status} ${await ready.text()}`);

  // Clerk's side of the set-up: webhooks to userhub, and an admin (made as the seed says:
  // role admin in public metadata; userhub reads them from Clerk on their first request).
  await emulatorCall(emulator, secret, 'POST', '/__emulator/webhooks', {
    url: `${server}/api/webhooks/clerk`,
    secret: webhookSecret,
  });
  const admin = await emulatorCall(emulator, secret, 'POST', '/v1/users', {
    email_address: ['conformance.admin@userhub.test'],
    first_name: 'Conformance',
    last_name: 'Admin',
    public_metadata: { role: 'admin' },
  });
  const { jwt } = await emulatorCall(emulator, secret, 'POST', '/__emulator/session_tokens', {
    user_id: admin.id,
    ttl_seconds: 3600,
  });

  const files = process.argv.slice(2);
  const tests = files.length
    ? files
    : readdirSync(join(here, 'tests'))
        .filter((file) => file.endsWith('.test.mjs'))
        .sort()
        .map((file) => join(here, 'tests', file));
  const runner = spawn(process.execPath, ['--test', '--test-concurrency=1', ...tests], {
    stdio: 'inherit',
    env: {
      ...process.env,
      USERHUB_URL: server,
      CLERK_EMULATOR_URL: emulator,
      CLERK_SECRET_KEY: secret,
      ADMIN_TOKEN: jwt,
      ADMIN_CLERK_ID: admin.id,
      FRONTEND_ORIGIN: frontendOrigin,
    },
  });
  const code = await new Promise((done) => runner.on('exit', (exitCode) => done(exitCode ?? 1)));
  if (code !== 0 || process.env.KEEP_LOGS) {
    console.error('--- server logs ---');
    for (const line of logs) console.error(line);
  }
  shutdown();
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    shutdown();
    process.exit(130);
  });
}
main().catch((err) => fail(err.stack ?? String(err)));
