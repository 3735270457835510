// The GraphQL-over-HTTP audit of npm graphql-http (the reference implementation of the
// specification) against POST and GET /graphql. Every audit must be `ok`: a `warn` (a SHOULD
// missed) fails as surely as an `error` (a MUST missed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditServer } from 'graphql-http';

import { adminToken, graphqlUrl } from '../lib/userhub.mjs';

/** fetch, with the admin's session token on every request, as a frontend would send it. */
function authorisedFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${adminToken}`);
  return fetch(input, { ...init, headers });
}

async function audit(fetchFn, caller) {
  const results = await auditServer({ url: graphqlUrl, fetchFn });
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  for (const result of results) counts[result.status] += 1;
  console.log(
    `graphql-http audit (${caller}): ${results.length} audits: ${counts.ok} ok, ${counts.notice} notice, ` +
      `${counts.warn} warn, ${counts.error} error`,
  );
  const failures = [];
  for (const result of results) {
    if (result.status === 'ok') continue;
    const response = result.response
      ? `${result.response.status} ${JSON.stringify(Object.fromEntries(result.response.headers))} ${await result.response.text().catch(() => '')}`
      : '';
    failures.push(`${result.status} ${result.id} ${result.name}: ${result.reason} ${response}`);
  }
  for (const failure of failures) console.log(`  ${failure}`);
  assert.ok(results.length >= 60, `the audit ran only ${results.length} audits`);
  assert.deepEqual(failures, [], 'every audit should be ok');
}

test('every GraphQL-over-HTTP audit of graphql-http is ok for a signed-in caller', () =>
  audit(authorisedFetch, 'signed in'));

// The audit's operations ask only for `__typename`, which anonymous callers may read.
test('every GraphQL-over-HTTP audit of graphql-http is ok for an anonymous caller', () =>
  audit(fetch, 'anonymous'));
