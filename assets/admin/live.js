// Live changes over one WebSocket (graphql-transport-ws), reconnecting with backoff, and how a
// change is described to the person watching.

import { ROLE_LABELS, SOURCE_LABELS, session } from './state.js';

export const live = {
  socket: null,
  status: 'offline',
  subscriptions: new Map(),
  nextId: 1,
  attempts: 0,
  everConnected: false,
  retryTimer: null,
  // Set by main.js: what to do once the socket is back after a loss.
  onReconnect: null,

  connect() {
    clearTimeout(this.retryTimer);
    if (!session.token) return;
    const url = new URL('/graphql', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, 'graphql-transport-ws');
    this.socket = socket;
    this.setStatus('connecting');
    socket.onopen = () => socket.send(JSON.stringify({
      type: 'connection_init',
      payload: { authorization: `Bearer ${session.token}` },
    }));
    socket.onmessage = (message) => this.receive(socket, message);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      // The server closes a socket whose caller's role or organisation changed: what this
      // page shows and allows was drawn for who they were, so it starts again.
      if (event.code === 4403 && /role or organisation changed/.test(event.reason)) {
        location.reload();
        return;
      }
      if (event.code === 4401 || event.code === 4403) {
        this.setStatus('refused', event.reason);
        return;
      }
      this.setStatus('offline');
      const delay = Math.min(15000, 500 * 2 ** this.attempts++);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  },

  receive(socket, message) {
    let frame;
    try { frame = JSON.parse(message.data); } catch (_) { return; }
    const subscription = this.subscriptions.get(frame.id);
    switch (frame.type) {
      case 'connection_ack': {
        const reconnected = this.everConnected;
        this.attempts = 0;
        this.everConnected = true;
        this.setStatus('live');
        for (const [id, entry] of this.subscriptions) this.send(id, entry);
        // Changes made while the socket was down were not seen: read the view again.
        if (reconnected) live.onReconnect?.();
        break;
      }
      case 'ping':
        socket.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        if (!subscription) break;
        if (frame.payload.errors?.length) subscription.onError?.(frame.payload.errors[0]);
        if (frame.payload.data) subscription.onData(frame.payload.data);
        break;
      case 'error':
        subscription?.onError?.(frame.payload?.[0] || { message: 'the subscription was refused' });
        this.subscriptions.delete(frame.id);
        break;
      case 'complete':
        // The server ended it (a slow subscriber is told EVENTS_MISSED first): start again.
        if (subscription) {
          setTimeout(() => { if (this.subscriptions.get(frame.id) === subscription) this.send(frame.id, subscription); }, 1000);
        }
        break;
      default:
        break;
    }
  },

  send(id, entry) {
    if (this.status !== 'live') return;
    this.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: entry.query, variables: entry.variables || {} } }));
  },

  subscribe(query, variables, handlers) {
    const id = String(this.nextId++);
    const entry = { query, variables, ...handlers };
    this.subscriptions.set(id, entry);
    this.send(id, entry);
    return () => {
      this.subscriptions.delete(id);
      if (this.status === 'live') this.socket.send(JSON.stringify({ id, type: 'complete' }));
    };
  },

  stop() {
    clearTimeout(this.retryTimer);
    this.subscriptions.clear();
    const socket = this.socket;
    this.socket = null;
    this.everConnected = false;
    if (socket) socket.close(1000, 'signed out');
    this.setStatus('offline');
  },

  setStatus(status, reason) {
    this.status = status;
    const indicator = document.getElementById('live');
    indicator.dataset.state = status;
    const labels = { live: 'Live', connecting: 'Connecting…', offline: 'Offline, retrying', refused: 'Live updates refused' };
    document.getElementById('live-label').textContent = labels[status] || status;
    indicator.title = reason ? `Live updates: ${reason}` : `Live updates: ${labels[status]}`;
  },
};

export function sameAsShown(a, b) {
  return ['email', 'fullName', 'role', 'organisationId', 'isActive', 'isSuspended']
    .every((key) => a[key] === b[key]);
}

export function describeChange(change, before) {
  const user = change.user;
  const how = SOURCE_LABELS[change.source] || change.source;
  switch (change.kind) {
    case 'CREATED': return `joined ${how}`;
    case 'DEACTIVATED': return `removed ${how}`;
    case 'SUSPENDED': return `suspended ${how}`;
    case 'UNSUSPENDED': return `unsuspended ${how}`;
    default: break;
  }
  const parts = [];
  if (before) {
    if (before.role !== user.role) parts.push(`role ${ROLE_LABELS[before.role]} → ${ROLE_LABELS[user.role]}`);
    if (before.organisationId !== user.organisationId) {
      parts.push(`organisation ${before.organisation?.name || 'none'} → ${user.organisation?.name || 'none'}`);
    }
    if (before.fullName !== user.fullName) parts.push(`name → ${user.fullName}`);
    if (before.email !== user.email) parts.push(`email → ${user.email}`);
  }
  return `${parts.length ? parts.join(', ') : 'updated'} ${how}`;
}
