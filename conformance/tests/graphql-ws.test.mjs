// Live changes through the WebSocket clients dashboards use: npm graphql-ws (the
// graphql-transport-ws protocol) and subscriptions-transport-ws (the legacy `graphql-ws`
// protocol). Each subscribes to `userChanged`, sees a change made by a mutation and one
// delivered by a Clerk webhook, and completes cleanly.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { adminToken, clerkUser, emulator, eventually, graphql, userByEmail, websocketUrl } from '../lib/userhub.mjs';

const USER_CHANGED = `subscription {
  userChanged { kind source user { id email role firstName isActive } }
}`;

/** Collects a subscription's events and lets a test wait for the one it expects. */
function collector() {
  const events = [];
  const waiters = [];
  let completed = false;
  let failure;
  const settle = () => {
    for (const waiter of [...waiters]) {
      const found = events.find(waiter.match);
      if (found) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      } else if (failure || completed) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.reject(failure ?? new Error('the subscription completed before the event came'));
      }
    }
  };
  return {
    events,
    get completed() {
      return completed;
    },
    sink: {
      next: (value) => {
        events.push(value);
        settle();
      },
      error: (err) => {
        failure = err instanceof Error ? err : new Error(JSON.stringify(err));
        settle();
      },
      complete: () => {
        completed = true;
        settle();
      },
    },
    waitFor(match, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event in ${ms} ms: ${JSON.stringify(events)}`)), ms);
        waiters.push({
          match,
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        });
        settle();
      });
    },
  };
}

/** A mutation and a Clerk webhook, each of which a subscriber must see. */
async function makeChanges(events, label) {
  const person = await clerkUser(label, { role: 'member' });
  const created = await events.waitFor(
    (event) => event.data?.userChanged.user.email === person.email && event.data.userChanged.kind === 'CREATED',
  );
  assert.equal(created.data.userChanged.source, 'webhook');
  assert.equal(created.data.userChanged.user.role, 'MEMBER');
  assert.equal(created.data.userChanged.user.isActive, true);

  const user = await userByEmail(person.email);
  await graphql('mutation ($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { id } }', { id: user.id });
  const updated = await events.waitFor(
    (event) => event.data?.userChanged.user.id === user.id && event.data.userChanged.user.role === 'LECTURER',
  );
  assert.equal(updated.data.userChanged.kind, 'UPDATED');
  assert.equal(updated.data.userChanged.source, 'api');

  // A change made in Clerk's dashboard reaches userhub only by webhook.
  await emulator('PATCH', `/v1/users/${person.clerkId}`, { first_name: `${label}Renamed` });
  const renamed = await events.waitFor((event) => event.data?.userChanged.user.firstName === `${label}Renamed`);
  assert.equal(renamed.data.userChanged.source, 'webhook');
  assert.equal(renamed.data.userChanged.user.id, user.id);
}

test('the graphql-ws client subscribes, receives a mutation and a webhook, and completes cleanly', async () => {
  const closes = [];
  const client = createClient({
    url: websocketUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${adminToken}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: (event) => closes.push(event.code) },
  });
  const events = collector();
  const unsubscribe = client.subscribe({ query: USER_CHANGED }, events.sink);
  try {
    // The subscription is live once the server has acknowledged it; give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await makeChanges(events, 'Wsclient');
    assert.ok(events.events.every((event) => !event.errors), JSON.stringify(events.events));
  } finally {
    unsubscribe();
  }
  // Unsubscribing sends `complete`; the client then completes the sink, never errors it.
  await eventually(() => events.completed || undefined, 5_000, 'the sink to complete');
  await client.dispose();
  assert.deepEqual(closes.filter((code) => code !== 1000), [], `unclean closes: ${closes}`);
});

test('the graphql-ws client sees its subscription completed by the server when the query ends', async () => {
  const client = createClient({
    url: websocketUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${adminToken}` },
    retryAttempts: 0,
  });
  try {
    // A query over the socket yields one result and then the server's `complete`.
    const results = [];
    for await (const result of client.iterate({ query: '{ me { email role } }' })) results.push(result);
    assert.deepEqual(results, [{ data: { me: { email: 'conformance.admin@userhub.test', role: 'ADMIN' } } }]);
  } finally {
    await client.dispose();
  }
});

test('a refused token closes the graphql-ws client with 4403', async () => {
  const closed = new Promise((resolve) => {
    const client = createClient({
      url: websocketUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: 'Bearer not-a-token' },
      retryAttempts: 0,
      on: { closed: (event) => resolve({ code: event.code, reason: event.reason, client }) },
    });
    client.subscribe({ query: USER_CHANGED }, { next() {}, error() {}, complete() {} });
  });
  const { code, reason, client } = await closed;
  await client.dispose();
  assert.equal(code, 4403);
  assert.match(reason, /./);
});

test('the legacy subscriptions-transport-ws client subscribes, receives changes, and stops cleanly', async () => {
  const client = new SubscriptionClient(
    websocketUrl,
    { connectionParams: { authorization: `Bearer ${adminToken}` }, reconnect: false, lazy: false },
    WebSocket,
  );
  const events = collector();
  const subscription = client.request({ query: USER_CHANGED }).subscribe(events.sink);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    await makeChanges(events, 'Legacyclient');
    assert.ok(events.events.every((event) => !event.errors), JSON.stringify(events.events));
  } finally {
    subscription.unsubscribe();
    client.close();
  }
});
