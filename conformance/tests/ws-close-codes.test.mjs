// The graphql-transport-ws protocol spoken by hand over a raw WebSocket (npm ws), one test per
// rule of the protocol that ends a connection, each checking the exact close code.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';

import { adminToken, websocketUrl } from '../lib/userhub.mjs';

const PROTOCOL = 'graphql-transport-ws';

/** Opens a socket and gathers what the server sends until it closes. */
function open(protocols = PROTOCOL) {
  const socket = protocols === null ? new WebSocket(websocketUrl) : new WebSocket(websocketUrl, protocols);
  const messages = [];
  const closed = new Promise((resolve, reject) => {
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.on('error', reject);
  });
  const opened = new Promise((resolve, reject) => {
    socket.on('open', resolve);
    socket.on('error', reject);
  });
  const waiters = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    messages.push(message);
    for (const waiter of [...waiters]) {
      if (waiter.type === message.type) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  return {
    socket,
    messages,
    opened,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next: (type) =>
      new Promise((resolve, reject) => {
        const found = messages.find((message) => message.type === type);
        if (found) return resolve(found);
        waiters.push({ type, resolve });
        closed.then((close) => reject(new Error(`closed (${close.code}) before ${type}`)));
      }),
  };
}

async function acknowledged() {
  const connection = open();
  await connection.opened;
  assert.equal(connection.socket.protocol, PROTOCOL);
  connection.send({ type: 'connection_init', payload: { authorization: `Bearer ${adminToken}` } });
  await connection.next('connection_ack');
  return connection;
}

test('an operation runs, pings are answered and a client close is 1000', async () => {
  const connection = await acknowledged();
  connection.send({ type: 'ping', payload: { at: 1 } });
  const pong = await connection.next('pong');
  assert.deepEqual(pong, { type: 'pong', payload: { at: 1 } });
  connection.send({ id: 'q1', type: 'subscribe', payload: { query: '{ me { role } }' } });
  assert.deepEqual(await connection.next('next'), { id: 'q1', type: 'next', payload: { data: { me: { role: 'ADMIN' } } } });
  assert.deepEqual(await connection.next('complete'), { id: 'q1', type: 'complete' });
  connection.socket.close(1000, 'done');
  assert.equal((await connection.closed).code, 1000);
});

test('a message that is not JSON closes with 4400', async () => {
  const connection = await acknowledged();
  connection.send('{ not json');
  assert.equal((await connection.closed).code, 4400);
});

test('an unknown message type closes with 4400', async () => {
  const connection = await acknowledged();
  connection.send({ type: 'start', id: '1', payload: { query: '{ me { id } }' } });
  assert.equal((await connection.closed).code, 4400);
});

test('a subscribe without an id closes with 4400', async () => {
  const connection = await acknowledged();
  connection.send({ type: 'subscribe', payload: { query: '{ me { id } }' } });
  assert.equal((await connection.closed).code, 4400);
});

test('subscribe before connection_ack closes with 4401', async () => {
  const connection = open();
  await connection.opened;
  connection.send({ id: '1', type: 'subscribe', payload: { query: '{ me { id } }' } });
  const close = await connection.closed;
  assert.equal(close.code, 4401);
  assert.equal(close.reason, 'Unauthorized');
});

test('a refused connection_init closes with 4403', async () => {
  const connection = open();
  await connection.opened;
  connection.send({ type: 'connection_init', payload: { authorization: 'Bearer forged.token.here' } });
  const close = await connection.closed;
  assert.equal(close.code, 4403);
  assert.ok(!connection.messages.some((message) => message.type === 'connection_ack'));
});

test('no subprotocol closes with 4406', async () => {
  const connection = open(null);
  await connection.opened;
  assert.equal((await connection.closed).code, 4406);
});

test('no connection_init within the timeout closes with 4408', async () => {
  const connection = open();
  await connection.opened;
  const started = Date.now();
  const close = await connection.closed;
  assert.equal(close.code, 4408);
  assert.ok(Date.now() - started >= 1000, 'closed before any reasonable init timeout');
});

test('a second subscribe with a live id closes with 4409', async () => {
  const connection = await acknowledged();
  const subscribe = { id: 'live', type: 'subscribe', payload: { query: 'subscription { userChanged { kind } }' } };
  connection.send(subscribe);
  // A ping round trip shows the first subscribe was taken before the second goes.
  connection.send({ type: 'ping' });
  await connection.next('pong');
  connection.send(subscribe);
  const close = await connection.closed;
  assert.equal(close.code, 4409);
  assert.equal(close.reason, 'Subscriber for live already exists');
});

test('a second connection_init closes with 4429', async () => {
  const connection = await acknowledged();
  connection.send({ type: 'connection_init', payload: { authorization: `Bearer ${adminToken}` } });
  const close = await connection.closed;
  assert.equal(close.code, 4429);
  assert.equal(close.reason, 'Too many initialisation requests');
});
