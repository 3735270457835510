// userhub's admin console: a client of userhub's own GraphQL API, with no dependencies.
// Queries and mutations go over HTTP; live changes and sync progress over the WebSocket
// (graphql-transport-ws). What the page offers follows the caller's role; the API decides.
'use strict';

(() => {
  const config = readConfig();
  const TOKEN_KEY = 'userhub.admin.token';
  const SIGNED_OUT_KEY = 'userhub.admin.signedOut';
  const PAGE_SIZE = 20;
  const ROLES = ['ADMIN', 'ORG_ADMIN', 'LECTURER', 'MEMBER'];
  const ROLE_LABELS = { ADMIN: 'Admin', ORG_ADMIN: 'Org admin', LECTURER: 'Lecturer', MEMBER: 'Member' };
  const SOURCE_LABELS = { api: 'in userhub', webhook: 'from Clerk', sync: 'by a sync', cli: 'from the command line' };
  const USER_FIELDS = `id clerkId email firstName lastName fullName role organisationId
    organisation { id name } isActive isSuspended lastSignInAt createdAt updatedAt`;
  const RUN_FIELDS = 'id status startedAt finishedAt seen created updated deactivated error triggeredBy';

  const session = { token: null, me: null, organisations: [] };
  const NAV_TEMPLATE = document.getElementById('nav').innerHTML;
  let currentView = null;

  function readConfig() {
    try {
      return JSON.parse(document.getElementById('userhub-config').textContent);
    } catch (_) {
      return { localMode: false, adminToken: null };
    }
  }

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value == null || value === false) continue;
      if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
      else if (name === 'class') element.className = value;
      else if (name === 'dataset') Object.assign(element.dataset, value);
      else if (name === 'value' || name === 'checked' || name === 'disabled') element[name] = value;
      else element.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      element.append(child instanceof Node ? child : String(child));
    }
    return element;
  }

  function choice(options, selected, attributes) {
    return h('select', attributes, options.map(([value, label]) =>
      h('option', { value, selected: value === selected }, label)));
  }

  function field(label, control) {
    return h('label', { class: 'field' }, h('span', {}, label), control);
  }

  function errorText(error) {
    return h('p', { class: 'error', role: 'alert' }, describeError(error));
  }

  function describeError(error) {
    if (!error) return '';
    const code = error.code ? ` (${error.code})` : '';
    return `${error.message}${code}`;
  }

  function when(iso) {
    if (!iso) return '—';
    const date = new Date(iso);
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function initials(user) {
    const words = [user.firstName, user.lastName].filter(Boolean);
    const letters = words.length ? words.map((word) => word[0]) : [user.email[0]];
    return letters.join('').toUpperCase().slice(0, 2);
  }

  function roleBadge(role) {
    return h('span', { class: `badge role role-${role.toLowerCase()}` }, ROLE_LABELS[role] || role);
  }

  function statusOf(user) {
    if (!user.isActive) return 'removed';
    return user.isSuspended ? 'suspended' : 'active';
  }

  function statusBadge(user) {
    const status = statusOf(user);
    const label = { active: 'Active', suspended: 'Suspended', removed: 'Removed' }[status];
    return h('span', { class: `badge status status-${status}` }, h('span', { class: 'dot' }), label);
  }

  function toast(text, kind = 'info') {
    const item = h('div', { class: `toast toast-${kind}` }, text);
    document.getElementById('toasts').append(item);
    setTimeout(() => item.remove(), kind === 'error' ? 10000 : 6000);
  }

  function confirmAction(title, text, okLabel) {
    const dialog = document.getElementById('confirm');
    document.getElementById('confirm-title').textContent = title;
    document.getElementById('confirm-text').textContent = text;
    const ok = document.getElementById('confirm-ok');
    const cancel = document.getElementById('confirm-cancel');
    ok.textContent = okLabel;
    return new Promise((resolve) => {
      const finish = (answer) => {
        ok.removeEventListener('click', onOk);
        cancel.removeEventListener('click', onCancel);
        dialog.removeEventListener('cancel', onCancel);
        dialog.close();
        resolve(answer);
      };
      const onOk = () => finish(true);
      const onCancel = (event) => { event.preventDefault(); finish(false); };
      ok.addEventListener('click', onOk);
      cancel.addEventListener('click', onCancel);
      dialog.addEventListener('cancel', onCancel);
      dialog.showModal();
      cancel.focus();
    });
  }

  // Runs `action` with `button` disabled, showing any error in `errorSlot` (replacing what was there).
  async function busy(button, errorSlot, action) {
    if (errorSlot) errorSlot.replaceChildren();
    button.disabled = true;
    button.classList.add('busy');
    try {
      return await action();
    } catch (error) {
      if (errorSlot) errorSlot.replaceChildren(errorText(error));
      else toast(describeError(error), 'error');
      return undefined;
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
    }
  }

  // Lists reload on every keystroke and filter change; only the newest request's answer may be
  // drawn, whatever order the answers come back in.
  function newestOnly() {
    let latest = 0;
    return () => {
      latest += 1;
      const mine = latest;
      return () => mine === latest;
    };
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(message, code, fieldName) {
      super(message);
      this.code = code;
      this.field = fieldName;
    }
  }

  async function gql(query, variables = {}) {
    let response;
    try {
      response = await fetch('/graphql', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new ApiError(`userhub cannot be reached (${error.message}); check that the server is running`, 'NETWORK');
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      throw new ApiError(`userhub answered HTTP ${response.status} without a GraphQL response`, `HTTP_${response.status}`);
    }
    if (body.errors && body.errors.length) {
      const first = body.errors[0];
      const error = new ApiError(first.message, first.extensions?.code || 'ERROR', first.extensions?.field);
      if (error.code === 'UNAUTHENTICATED' && session.me) signedOutByServer(error);
      throw error;
    }
    if (body.error) throw new ApiError(body.error.message, body.error.code);
    return body.data;
  }

  async function post(path, payload) {
    let response;
    try {
      response = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${session.token}` },
        body: JSON.stringify(payload || {}),
      });
    } catch (error) {
      throw new ApiError(`userhub cannot be reached (${error.message})`, 'NETWORK');
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(body.error?.message || `HTTP ${response.status}`, body.error?.code || `HTTP_${response.status}`);
    }
    return body;
  }

  // ---------------------------------------------------------------- live (graphql-transport-ws)

  const live = {
    socket: null,
    status: 'offline',
    subscriptions: new Map(),
    nextId: 1,
    attempts: 0,
    everConnected: false,
    retryTimer: null,

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
          if (reconnected) currentView?.refresh?.();
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

  function sameAsShown(a, b) {
    return ['email', 'fullName', 'role', 'organisationId', 'isActive', 'isSuspended']
      .every((key) => a[key] === b[key]);
  }

  function describeChange(change, before) {
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

  // ---------------------------------------------------------------- roles

  const isAdmin = () => session.me?.role === 'ADMIN';
  const isManager = () => isAdmin() || session.me?.role === 'ORG_ADMIN';

  function mayManage(user) {
    if (!user.isActive) return false;
    if (isAdmin()) return true;
    return session.me?.role === 'ORG_ADMIN'
      && user.organisationId === session.me.organisationId
      && user.role !== 'ADMIN';
  }

  function grantableRoles() {
    return isAdmin() ? ROLES : ROLES.filter((role) => role !== 'ADMIN');
  }

  function organisationOptions(noneLabel) {
    return [['', noneLabel], ...session.organisations.map((org) => [org.id, org.name])];
  }

  async function loadOrganisations() {
    if (!isAdmin()) {
      session.organisations = session.me.organisation ? [session.me.organisation] : [];
      return;
    }
    const all = [];
    let after = null;
    for (let page = 0; page < 20; page += 1) {
      const data = await gql(`query Organisations($after: String) {
        organisations(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id name } } }`, { after });
      all.push(...data.organisations.nodes);
      if (!data.organisations.pageInfo.hasNextPage) break;
      after = data.organisations.pageInfo.endCursor;
    }
    session.organisations = all;
  }

  // ---------------------------------------------------------------- views: users

  const STATUS_FILTERS = [
    ['current', 'Active and suspended'],
    ['active', 'Active'],
    ['suspended', 'Suspended'],
    ['removed', 'Removed'],
    ['all', 'Everyone'],
  ];

  function statusFilter(status) {
    switch (status) {
      case 'active': return { isActive: true, isSuspended: false };
      case 'suspended': return { isActive: true, isSuspended: true };
      case 'removed': return { isActive: false };
      case 'all': return {};
      default: return { isActive: true };
    }
  }

  function usersView(params) {
    const filters = {
      search: params.get('q') || '',
      organisationId: params.get('org') || '',
      role: params.get('role') || '',
      status: params.get('status') || 'current',
      orderBy: params.get('order') || 'CREATED_AT_DESC',
    };
    const cursors = [null];
    let rows = new Map();
    let totalCount = 0;
    let hasNextPage = false;

    const tableBody = h('tbody');
    const countLabel = h('span', { class: 'muted', id: 'user-count' });
    const pageLabel = h('span', { class: 'muted' });
    const listError = h('div');
    const previous = h('button', { type: 'button', class: 'quiet', onclick: () => { cursors.pop(); load(); } }, '← Previous');
    const next = h('button', {
      type: 'button',
      class: 'quiet',
      onclick: () => { cursors.push(next.dataset.cursor); load(); },
    }, 'Next →');

    const searchInput = h('input', { type: 'search', placeholder: 'Search name or email', value: filters.search, 'aria-label': 'Search users' });
    let searchTimer;
    searchInput.addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { filters.search = searchInput.value.trim(); restart(); }, 250);
    });
    const controls = [
      field('Search', searchInput),
      isAdmin() ? field('Organisation', choice(organisationOptions('All organisations'), filters.organisationId, {
        id: 'filter-organisation',
        onchange: (event) => { filters.organisationId = event.target.value; restart(); },
      })) : null,
      field('Role', choice([['', 'All roles'], ...ROLES.map((role) => [role, ROLE_LABELS[role]])], filters.role, {
        id: 'filter-role',
        onchange: (event) => { filters.role = event.target.value; restart(); },
      })),
      field('Status', choice(STATUS_FILTERS, filters.status, {
        id: 'filter-status',
        onchange: (event) => { filters.status = event.target.value; restart(); },
      })),
      field('Order', choice([['CREATED_AT_DESC', 'Newest first'], ['CREATED_AT_ASC', 'Oldest first'], ['EMAIL_ASC', 'Email A–Z']], filters.orderBy, {
        onchange: (event) => { filters.orderBy = event.target.value; restart(); },
      })),
    ];

    const invitations = isManager() ? invitePanel({ onInvited: () => invitations.reload() }) : null;

    const element = h('section', { class: 'view view-users' },
      h('div', { class: 'view-head' },
        h('h1', {}, 'Users'),
        countLabel),
      invitations?.element,
      h('div', { class: 'toolbar', role: 'search' }, controls),
      listError,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'data users', id: 'users-table' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'User'), h('th', {}, 'Role'), h('th', {}, 'Organisation'),
            h('th', {}, 'Status'), h('th', {}, 'Actions'))),
          tableBody)),
      h('div', { class: 'pager' }, previous, pageLabel, next));

    function writeParams() {
      const query = new URLSearchParams();
      if (filters.search) query.set('q', filters.search);
      if (filters.organisationId) query.set('org', filters.organisationId);
      if (filters.role) query.set('role', filters.role);
      if (filters.status !== 'current') query.set('status', filters.status);
      if (filters.orderBy !== 'CREATED_AT_DESC') query.set('order', filters.orderBy);
      const search = query.toString();
      history.replaceState(null, '', `/admin/users${search ? `?${search}` : ''}`);
    }

    function restart() {
      cursors.length = 1;
      writeParams();
      load();
    }

    function apiFilter() {
      const filter = { ...statusFilter(filters.status) };
      if (filters.search) filter.search = filters.search;
      if (filters.organisationId) filter.organisationId = filters.organisationId;
      if (filters.role) filter.role = filters.role;
      return filter;
    }

    const request = newestOnly();
    async function load() {
      const current = request();
      listError.replaceChildren();
      element.setAttribute('aria-busy', 'true');
      try {
        const data = await gql(`query Users($first: Int!, $after: String, $filter: UsersFilter, $orderBy: UserOrderBy!) {
          users(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
            totalCount pageInfo { hasNextPage endCursor } nodes { ${USER_FIELDS} } } }`, {
          first: PAGE_SIZE,
          after: cursors[cursors.length - 1],
          filter: apiFilter(),
          orderBy: filters.orderBy,
        });
        if (!current()) return;
        const page = data.users;
        totalCount = page.totalCount;
        hasNextPage = page.pageInfo.hasNextPage;
        next.dataset.cursor = page.pageInfo.endCursor || '';
        rows = new Map();
        tableBody.replaceChildren(...page.nodes.map((user) => renderRow(user)));
        if (!page.nodes.length) {
          tableBody.append(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No users match these filters.')));
        }
        updateCounts();
      } catch (error) {
        listError.replaceChildren(errorText(error));
      } finally {
        element.removeAttribute('aria-busy');
      }
    }

    function updateCounts() {
      countLabel.textContent = `${totalCount} ${totalCount === 1 ? 'user' : 'users'}`;
      pageLabel.textContent = `Page ${cursors.length} of ${Math.max(1, Math.ceil(totalCount / PAGE_SIZE))}`;
      previous.disabled = cursors.length <= 1;
      next.disabled = !hasNextPage;
    }

    function renderRow(user, hint) {
      const rowError = h('div', { class: 'row-error' });
      const manageable = mayManage(user);
      const roleCell = manageable
        ? choice(grantableRoles().map((role) => [role, ROLE_LABELS[role]]), user.role, {
          'aria-label': `Role of ${user.email}`,
          class: 'role-select',
          onchange: (event) => change(user, { role: event.target.value }, event.target, rowError),
        })
        : roleBadge(user.role);
      const organisationCell = manageable && isAdmin()
        ? choice(organisationOptions('No organisation'), user.organisationId || '', {
          'aria-label': `Organisation of ${user.email}`,
          class: 'organisation-select',
          onchange: (event) => change(user, { organisationId: event.target.value || null }, event.target, rowError),
        })
        : h('span', {}, user.organisation?.name || h('span', { class: 'muted' }, 'None'));
      const actions = [];
      if (manageable) {
        actions.push(user.isSuspended
          ? h('button', { type: 'button', class: 'quiet', onclick: (event) => suspend(user, false, event.target, rowError) }, 'Unsuspend')
          : h('button', { type: 'button', class: 'quiet', onclick: (event) => suspend(user, true, event.target, rowError) }, 'Suspend'));
        actions.push(h('button', { type: 'button', class: 'danger-quiet', onclick: (event) => remove(user, event.target, rowError) }, 'Remove'));
      }
      if (isAdmin()) {
        actions.push(h('a', {
          href: `/admin/audit?subject=${encodeURIComponent(user.id)}&label=${encodeURIComponent(user.email)}`,
          'data-link': true,
          class: 'button quiet',
        }, 'History'));
      }
      const row = h('tr', { dataset: { userId: user.id, email: user.email, status: statusOf(user) }, class: hint ? 'changed' : null },
        h('td', { 'data-label': 'User' },
          h('div', { class: 'person' },
            h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(user)),
            h('div', {},
              h('div', { class: 'name' }, user.fullName),
              user.fullName === user.email ? null : h('div', { class: 'email' }, user.email),
              hint ? h('div', { class: 'hint' }, `Just now: ${hint}`) : null))),
        h('td', { 'data-label': 'Role' }, roleCell),
        h('td', { 'data-label': 'Organisation' }, organisationCell),
        h('td', { 'data-label': 'Status' }, statusBadge(user)),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, actions), rowError));
      rows.set(user.id, { user, row });
      return row;
    }

    function replaceRow(user, hint) {
      const existing = rows.get(user.id);
      const row = renderRow(user, hint);
      if (existing) existing.row.replaceWith(row);
      return row;
    }

    async function change(user, input, control, rowError) {
      rowError.replaceChildren();
      control.disabled = true;
      try {
        const data = await gql(`mutation UpdateUser($id: ID!, $input: UpdateUserInput!) {
          updateUser(id: $id, input: $input) { ${USER_FIELDS} } }`, { id: user.id, input });
        replaceRow(data.updateUser, describeChange({ kind: 'UPDATED', source: 'api', user: data.updateUser }, user));
      } catch (error) {
        control.disabled = false;
        control.value = 'role' in input ? user.role : (user.organisationId || '');
        rowError.replaceChildren(errorText(error));
      }
    }

    async function suspend(user, suspended, button, rowError) {
      const verb = suspended ? 'Suspend' : 'Unsuspend';
      if (suspended && !(await confirmAction(`Suspend ${user.fullName}?`,
        `${user.email} is banned in Clerk: their sessions end and they cannot sign in until unsuspended.`, 'Suspend'))) return;
      await busy(button, rowError, async () => {
        const data = await gql(`mutation ${verb}($id: ID!) { user: ${suspended ? 'suspendUser' : 'unsuspendUser'}(id: $id) { ${USER_FIELDS} } }`, { id: user.id });
        replaceRow(data.user, describeChange({ kind: suspended ? 'SUSPENDED' : 'UNSUSPENDED', source: 'api', user: data.user }, user));
      });
    }

    async function remove(user, button, rowError) {
      if (!(await confirmAction(`Remove ${user.fullName}?`,
        `${user.email} is deleted in Clerk and deactivated here. Their record and history stay; this cannot be undone from this page.`, 'Remove'))) return;
      await busy(button, rowError, async () => {
        const data = await gql(`mutation Remove($id: ID!) { removeUser(id: $id) { ${USER_FIELDS} } }`, { id: user.id });
        replaceRow(data.removeUser, describeChange({ kind: 'DEACTIVATED', source: 'api', user: data.removeUser }, user));
      });
    }

    function matchesFilters(user) {
      const wanted = apiFilter();
      if (wanted.isActive !== undefined && user.isActive !== wanted.isActive) return false;
      if (wanted.isSuspended !== undefined && user.isSuspended !== wanted.isSuspended) return false;
      if (wanted.organisationId && user.organisationId !== wanted.organisationId) return false;
      if (wanted.role && user.role !== wanted.role) return false;
      if (wanted.search) {
        const haystack = [user.email, user.firstName, user.lastName].filter(Boolean).join(' ').toLowerCase();
        if (!wanted.search.toLowerCase().split(/\s+/).every((word) => haystack.includes(word))) return false;
      }
      return true;
    }

    function onUserChange(change) {
      const known = rows.get(change.user.id);
      // The echo of a change this page made itself shows nothing new: keep the row's hint.
      if (known && sameAsShown(known.user, change.user)) return;
      const hint = describeChange(change, known?.user);
      if (known) {
        // A row that no longer matches the filters stays, marked, until the next load: rows
        // do not vanish under the pointer.
        replaceRow(change.user, hint);
      } else if (matchesFilters(change.user) && cursors.length === 1 && filters.orderBy === 'CREATED_AT_DESC') {
        tableBody.querySelector('tr.empty')?.remove();
        tableBody.prepend(renderRow(change.user, hint));
        totalCount += 1;
        updateCounts();
      }
      if (change.kind === 'CREATED') invitations?.reload();
    }

    load();
    invitations?.reload();
    return { element, onUserChange, refresh: () => { load(); invitations?.reload(); } };
  }

  function invitePanel({ onInvited }) {
    const emails = h('textarea', {
      id: 'invite-emails',
      rows: 3,
      placeholder: 'name@university.edu — paste several, separated by commas, spaces or new lines',
      'aria-label': 'Email addresses to invite',
    });
    const roles = grantableRoles();
    const role = choice(roles.map((value) => [value, ROLE_LABELS[value]]), 'LECTURER', { id: 'invite-role' });
    const organisation = isAdmin()
      ? choice(organisationOptions('No organisation'), '', { id: 'invite-organisation' })
      : null;
    const results = h('div', { class: 'invite-results', id: 'invite-results' });
    // What the last send said is about the addresses it sent: editing them starts afresh.
    emails.addEventListener('input', () => results.replaceChildren());
    const submit = h('button', { type: 'submit', class: 'primary', id: 'invite-submit' }, 'Send invitations');
    const pendingList = h('ul', { class: 'pending', id: 'pending-invitations' });
    const pendingError = h('div');
    const pendingCount = h('span', { class: 'muted' });

    const form = h('form', { class: 'invite', id: 'invite-form', onsubmit: (event) => { event.preventDefault(); send(); } },
      field('Emails', emails),
      h('div', { class: 'invite-options' },
        field('Role', role),
        organisation ? field('Organisation', organisation)
          : h('p', { class: 'muted' }, `Into ${session.me.organisation?.name || 'your organisation'}`),
        submit));

    const element = h('details', { class: 'panel', open: true },
      h('summary', {}, h('h2', {}, 'Invite people'), pendingCount),
      form, results,
      h('h3', {}, 'Pending invitations'), pendingError, pendingList);

    async function send() {
      const addresses = [...new Set(emails.value.split(/[\s,;]+/).map((value) => value.trim()).filter(Boolean))];
      results.replaceChildren();
      if (!addresses.length) {
        results.append(errorText({ message: 'Enter at least one email address.' }));
        emails.focus();
        return;
      }
      const organisationId = isAdmin() ? (organisation.value || null) : session.me.organisationId;
      const inputs = addresses.map((email) => ({ email, role: role.value, organisationId }));
      await busy(submit, results, async () => {
        const data = await gql(`mutation Invite($inputs: [InviteUserInput!]!) {
          inviteUsers(inputs: $inputs) { email invitation { id email } error { code message field } } }`, { inputs });
        const failed = data.inviteUsers.filter((item) => item.error);
        results.replaceChildren(h('ul', {}, data.inviteUsers.map((item) => item.error
          ? h('li', { class: 'error' }, `✗ ${item.email}: ${item.error.message} (${item.error.code})`)
          : h('li', { class: 'ok' }, `✓ ${item.email}: invitation sent`))));
        // Keep only the addresses that failed, to fix and send again.
        emails.value = failed.map((item) => item.email).join('\n');
        if (data.inviteUsers.length > failed.length) onInvited();
      });
    }

    const request = newestOnly();
    async function reload() {
      const current = request();
      pendingError.replaceChildren();
      try {
        const data = await gql(`query Pending { invitations(first: 50, filter: { status: PENDING }) {
          totalCount nodes { id clerkInvitationId email role organisation { name } createdAt } } }`);
        if (!current()) return;
        const { nodes, totalCount } = data.invitations;
        pendingCount.textContent = totalCount ? `${totalCount} pending` : '';
        pendingList.replaceChildren(...(nodes.length ? nodes.map(invitationItem)
          : [h('li', { class: 'muted' }, 'No pending invitations.')]));
      } catch (error) {
        pendingError.replaceChildren(errorText(error));
      }
    }

    function invitationItem(invitation) {
      const itemError = h('div', { class: 'row-error' });
      const buttons = [
        h('button', {
          type: 'button',
          class: 'danger-quiet',
          onclick: async (event) => {
            if (!(await confirmAction(`Revoke the invitation of ${invitation.email}?`, 'The link in their email stops working.', 'Revoke'))) return;
            await busy(event.target, itemError, async () => {
              await gql('mutation Revoke($id: ID!) { revokeInvitation(id: $id) { id status } }', { id: invitation.id });
              toast(`Invitation of ${invitation.email} revoked`);
              reload();
            });
          },
        }, 'Revoke'),
      ];
      if (config.localMode && isAdmin()) {
        buttons.unshift(h('button', {
          type: 'button',
          class: 'quiet',
          title: 'Local mode: the emulator accepts the invitation as the invitee would, and Clerk\'s webhook tells userhub',
          onclick: (event) => busy(event.target, itemError, async () => {
            await post(`/admin/local/invitations/${encodeURIComponent(invitation.clerkInvitationId)}/accept`, {});
            event.target.replaceWith(h('span', { class: 'muted' }, 'Accepted in the emulator; waiting for the webhook…'));
          }),
        }, 'Accept as invitee'));
      }
      return h('li', { dataset: { email: invitation.email } },
        h('div', {},
          h('strong', {}, invitation.email), ' ', roleBadge(invitation.role),
          h('span', { class: 'muted' }, ` ${invitation.organisation?.name || 'no organisation'} · sent ${when(invitation.createdAt)}`)),
        h('div', { class: 'row-actions' }, buttons), itemError);
    }

    return { element, reload };
  }

  // ---------------------------------------------------------------- views: invitations

  function invitationsView() {
    const invites = invitePanel({ onInvited: () => { invites.reload(); cursors.length = 1; load(); } });
    const status = h('select', { id: 'invitation-status', onchange: () => { cursors.length = 1; load(); } },
      [['PENDING', 'Pending'], ['ACCEPTED', 'Accepted'], ['REVOKED', 'Revoked'], ['EXPIRED', 'Expired'], ['', 'All']]
        .map(([value, label]) => h('option', { value }, label)));
    const body = h('tbody');
    const listError = h('div');
    const countLabel = h('span', { class: 'muted' });
    const cursors = [null];
    const more = h('button', { type: 'button', class: 'quiet', onclick: () => { cursors.push(more.dataset.cursor); load(true); } }, 'Load more');
    const element = h('section', { class: 'view' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Invitations'), countLabel),
      invites.element,
      h('div', { class: 'toolbar' }, field('Status', status)),
      listError,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, ['Email', 'Role', 'Organisation', 'Status', 'Sent'].map((title) => h('th', {}, title)))),
        body)),
      h('div', { class: 'pager' }, more));

    const request = newestOnly();
    async function load(append) {
      const current = request();
      listError.replaceChildren();
      try {
        const filter = status.value ? { status: status.value } : {};
        const data = await gql(`query Invitations($after: String, $filter: InvitationsFilter) {
          invitations(first: 50, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor }
            nodes { id email role status organisation { name } createdAt } } }`, { after: cursors[cursors.length - 1], filter });
        if (!current()) return;
        const page = data.invitations;
        countLabel.textContent = `${page.totalCount} shown by this filter`;
        const items = page.nodes.map((invitation) => h('tr', {},
          h('td', { 'data-label': 'Email' }, invitation.email),
          h('td', { 'data-label': 'Role' }, roleBadge(invitation.role)),
          h('td', { 'data-label': 'Organisation' }, invitation.organisation?.name || '—'),
          h('td', { 'data-label': 'Status' }, h('span', { class: `badge invitation-${invitation.status.toLowerCase()}` }, invitation.status.toLowerCase())),
          h('td', { 'data-label': 'Sent' }, when(invitation.createdAt))));
        if (append) body.append(...items);
        else body.replaceChildren(...items);
        if (!body.children.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No invitations.')));
        more.hidden = !page.pageInfo.hasNextPage;
        more.dataset.cursor = page.pageInfo.endCursor || '';
      } catch (error) {
        listError.replaceChildren(errorText(error));
      }
    }
    const reloadAll = () => { cursors.length = 1; load(); invites.reload(); };
    reloadAll();
    return {
      element,
      refresh: reloadAll,
      // An invitation is accepted when its user arrives.
      onUserChange: (change) => { if (change.kind === 'CREATED') reloadAll(); },
    };
  }

  // ---------------------------------------------------------------- views: organisations

  function organisationsView() {
    const body = h('tbody');
    const listError = h('div');
    const countLabel = h('span', { class: 'muted' });
    const includeArchived = h('input', { type: 'checkbox', id: 'include-archived', onchange: () => load() });
    const search = h('input', { type: 'search', placeholder: 'Search name or slug', 'aria-label': 'Search organisations' });
    let timer;
    search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 250); });

    const createForm = isAdmin() ? (() => {
      const name = h('input', { id: 'organisation-name', required: true, placeholder: 'School of Physics', 'aria-label': 'Name' });
      const slug = h('input', { id: 'organisation-slug', placeholder: 'derived from the name', 'aria-label': 'Slug' });
      const createError = h('div');
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
      return h('form', {
        class: 'panel inline-form',
        id: 'create-organisation',
        onsubmit: (event) => {
          event.preventDefault();
          busy(submit, createError, async () => {
            const input = { name: name.value.trim() };
            if (slug.value.trim()) input.slug = slug.value.trim();
            const data = await gql('mutation Create($input: CreateOrganisationInput!) { createOrganisation(input: $input) { id name } }', { input });
            toast(`Organisation ${data.createOrganisation.name} created`, 'ok');
            name.value = '';
            slug.value = '';
            await loadOrganisations();
            load();
          });
        },
      }, h('h2', {}, 'New organisation'), field('Name', name), field('Slug', slug), submit, createError);
    })() : null;

    const element = h('section', { class: 'view' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Organisations'), countLabel),
      createForm,
      h('div', { class: 'toolbar' },
        field('Search', search),
        isAdmin() ? h('label', { class: 'check' }, includeArchived, ' Show archived') : null),
      listError,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'organisations-table' },
        h('thead', {}, h('tr', {}, ['Name', 'Slug', 'Members', 'Status', 'Actions'].map((title) => h('th', {}, title)))),
        body)));

    const request = newestOnly();
    async function load() {
      const current = request();
      listError.replaceChildren();
      try {
        const filter = { includeArchived: includeArchived.checked };
        if (search.value.trim()) filter.search = search.value.trim();
        const data = await gql(`query Organisations($filter: OrganisationsFilter) {
          organisations(first: 100, filter: $filter) { totalCount nodes { id name slug memberCount isArchived archivedAt createdAt } } }`, { filter });
        if (!current()) return;
        const { nodes, totalCount } = data.organisations;
        countLabel.textContent = `${totalCount} ${totalCount === 1 ? 'organisation' : 'organisations'}${totalCount > nodes.length ? `, first ${nodes.length} shown` : ''}`;
        body.replaceChildren(...nodes.map(row));
        if (!nodes.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No organisations.')));
      } catch (error) {
        listError.replaceChildren(errorText(error));
      }
    }

    function row(org) {
      const rowError = h('div', { class: 'row-error' });
      const nameCell = h('td', { 'data-label': 'Name' }, h('strong', {}, org.name));
      const actions = [h('a', { href: `/admin/users?org=${encodeURIComponent(org.id)}`, 'data-link': true, class: 'button quiet' }, 'Users')];
      if (isAdmin() && !org.isArchived) {
        actions.push(h('button', { type: 'button', class: 'quiet', onclick: () => rename(org, nameCell, rowError) }, 'Rename'));
        actions.push(h('button', {
          type: 'button',
          class: 'danger-quiet',
          onclick: async (event) => {
            if (!(await confirmAction(`Archive ${org.name}?`, 'It leaves the lists and cannot take new members. Organisations with active users cannot be archived.', 'Archive'))) return;
            await busy(event.target, rowError, async () => {
              await gql('mutation Archive($id: ID!) { archiveOrganisation(id: $id) { id isArchived } }', { id: org.id });
              toast(`${org.name} archived`, 'ok');
              await loadOrganisations();
              load();
            });
          },
        }, 'Archive'));
      }
      return h('tr', { dataset: { organisationId: org.id, name: org.name } },
        nameCell,
        h('td', { 'data-label': 'Slug' }, h('code', {}, org.slug)),
        h('td', { 'data-label': 'Members', class: 'members' }, String(org.memberCount)),
        h('td', { 'data-label': 'Status' }, org.isArchived
          ? h('span', { class: 'badge status status-removed' }, `Archived ${when(org.archivedAt)}`)
          : h('span', { class: 'badge status status-active' }, h('span', { class: 'dot' }), 'Open')),
        h('td', { 'data-label': 'Actions' }, h('div', { class: 'row-actions' }, actions), rowError));
    }

    function rename(org, cell, rowError) {
      const input = h('input', { value: org.name, 'aria-label': `New name of ${org.name}` });
      const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
      const form = h('form', {
        class: 'rename',
        onsubmit: (event) => {
          event.preventDefault();
          busy(save, rowError, async () => {
            await gql('mutation Rename($id: ID!, $input: UpdateOrganisationInput!) { updateOrganisation(id: $id, input: $input) { id name } }',
              { id: org.id, input: { name: input.value.trim() } });
            toast(`Renamed to ${input.value.trim()}`, 'ok');
            await loadOrganisations();
            load();
          });
        },
      }, input, save, h('button', { type: 'button', class: 'quiet', onclick: () => load() }, 'Cancel'));
      cell.replaceChildren(form);
      input.focus();
    }

    load();
    return {
      element,
      refresh: load,
      // Member counts move when people join, leave or move.
      onUserChange: () => { clearTimeout(timer); timer = setTimeout(load, 300); },
    };
  }

  // ---------------------------------------------------------------- views: sync

  function syncView() {
    const bar = h('div', { class: 'bar', id: 'sync-bar' });
    const progress = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': 'Sync progress', id: 'sync-progress' }, bar);
    const label = h('p', { class: 'muted', id: 'sync-label' }, 'No sync has run yet.');
    const syncError = h('div');
    const statusError = h('div');
    const report = h('div', { id: 'sync-report' });
    const start = h('button', { type: 'button', class: 'primary', id: 'sync-start', onclick: () => run() }, 'Sync users');
    const check = h('button', { type: 'button', class: 'quiet', id: 'sync-check', onclick: () => status() }, 'Check status');
    let pollTimer;

    const element = h('section', { class: 'view' },
      h('div', { class: 'view-head' }, h('h1', {}, 'Sync with Clerk')),
      h('div', { class: 'panel' },
        h('p', {}, 'A sync reads every Clerk user and brings userhub in line: new users are created, changed ones updated, and users gone from Clerk deactivated. Webhooks keep things in step between syncs.'),
        h('div', { class: 'row-actions' }, start, check),
        progress, label, syncError),
      h('div', { class: 'panel' }, h('h2', {}, 'Status report'), statusError, report));

    function show(run, percent, total) {
      const value = run.status === 'RUNNING' ? (percent ?? 0) : 100;
      bar.style.width = `${Math.max(0, Math.min(100, value))}%`;
      progress.setAttribute('aria-valuenow', String(Math.round(value)));
      progress.dataset.status = run.status;
      const counts = `${run.seen}${total != null ? ` of ${total}` : ''} Clerk users read · ${run.created} created · ${run.updated} updated · ${run.deactivated} deactivated`;
      const texts = {
        RUNNING: `Running (${Math.round(value)}%): ${counts}`,
        SUCCEEDED: `Finished ${when(run.finishedAt)}: ${counts}`,
        FAILED: `Failed ${when(run.finishedAt)}: ${run.error || 'no reason given'}`,
      };
      label.textContent = texts[run.status] || run.status;
      label.className = run.status === 'FAILED' ? 'error' : 'muted';
      start.disabled = run.status === 'RUNNING';
      if (run.status !== 'RUNNING') clearInterval(pollTimer);
    }

    const unsubscribe = live.subscribe(`subscription Progress { syncProgress { total percent run { ${RUN_FIELDS} } } }`, {}, {
      onData: (data) => show(data.syncProgress.run, data.syncProgress.percent, data.syncProgress.total),
      onError: (error) => syncError.replaceChildren(errorText({ message: error.message, code: error.extensions?.code })),
    });

    async function run() {
      await busy(start, syncError, async () => {
        const data = await gql(`mutation Sync { syncUsers { ${RUN_FIELDS} } }`);
        show(data.syncUsers, 0, null);
        // Without the WebSocket, follow the run by asking.
        if (live.status !== 'live') {
          clearInterval(pollTimer);
          pollTimer = setInterval(async () => {
            try {
              const polled = await gql(`query Run($id: ID!) { syncRun(id: $id) { ${RUN_FIELDS} } }`, { id: data.syncUsers.id });
              show(polled.syncRun, null, null);
            } catch (error) {
              clearInterval(pollTimer);
              syncError.replaceChildren(errorText(error));
            }
          }, 1000);
        }
      });
      start.disabled = progress.dataset.status === 'RUNNING';
    }

    function drift(title, explanation, entry) {
      return h('div', { class: `drift ${entry.count ? 'has-drift' : ''}` },
        h('div', { class: 'drift-count' }, String(entry.count)),
        h('div', {}, h('strong', {}, title), h('p', { class: 'muted' }, explanation),
          entry.sample.length ? h('p', { class: 'sample' }, entry.sample.join(', ') + (entry.count > entry.sample.length ? ', …' : '')) : null));
    }

    async function status() {
      await busy(check, statusError, async () => {
        report.replaceChildren(h('p', { class: 'muted' }, 'Reading every Clerk user…'));
        const data = await gql(`query Status { syncStatus { clerkCount databaseCount inSync
          missingInDatabase { count sample } missingInClerk { count sample } differing { count sample }
          unknownOrganisations { count sample } lastRun { ${RUN_FIELDS} } } }`);
        const s = data.syncStatus;
        report.replaceChildren(
          h('p', { class: `verdict ${s.inSync ? 'in-sync' : 'drifted'}`, id: 'sync-verdict' },
            s.inSync ? '✓ userhub and Clerk agree.' : '⚠ userhub and Clerk differ: a sync would fix this.'),
          h('p', {}, `Clerk has ${s.clerkCount} users; userhub has ${s.databaseCount} active users.`),
          h('div', { class: 'drifts' },
            drift('Missing here', 'In Clerk, not active in userhub.', s.missingInDatabase),
            drift('Gone from Clerk', 'Active here, deleted in Clerk.', s.missingInClerk),
            drift('Differing', 'In both, with different data.', s.differing),
            drift('Unknown organisations', 'Clerk names an organisation userhub does not have.', s.unknownOrganisations)),
          h('p', { class: 'muted' }, s.lastRun ? `Last sync: ${s.lastRun.status.toLowerCase()} ${when(s.lastRun.finishedAt || s.lastRun.startedAt)}, by ${s.lastRun.triggeredBy === session.me.id ? 'you' : s.lastRun.triggeredBy}.` : 'No sync has run yet.'));
      });
    }

    return {
      element,
      destroy: () => { unsubscribe(); clearInterval(pollTimer); },
      refresh: () => {},
    };
  }

  // ---------------------------------------------------------------- views: audit

  function auditView(params) {
    const subject = params.get('subject') || '';
    const subjectLabel = params.get('label') || subject;
    const action = h('input', { type: 'search', placeholder: 'user.role_changed', 'aria-label': 'Action', value: params.get('action') || '' });
    const body = h('tbody');
    const listError = h('div');
    const countLabel = h('span', { class: 'muted' });
    const cursors = [null];
    const more = h('button', { type: 'button', class: 'quiet', onclick: () => { cursors.push(more.dataset.cursor); load(true); } }, 'Load older events');
    let timer;
    action.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { cursors.length = 1; load(); }, 300); });

    const element = h('section', { class: 'view' },
      h('div', { class: 'view-head' },
        h('h1', {}, subject ? `History of ${subjectLabel}` : 'Audit log'), countLabel),
      h('div', { class: 'toolbar' }, field('Action', action),
        subject ? h('a', { href: '/admin/audit', 'data-link': true, class: 'button quiet' }, 'Show every event') : null),
      listError,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data audit', id: 'audit-table' },
        h('thead', {}, h('tr', {}, ['When', 'What', 'Subject', 'Who', 'Change'].map((title) => h('th', {}, title)))),
        body)),
      h('div', { class: 'pager' }, more));

    function actor(value) {
      if (value === session.me.id) return 'you';
      if (/^[0-9a-f-]{36}$/.test(value)) return `user ${value.slice(0, 8)}`;
      return value;
    }

    function changes(event) {
      const before = event.before || {};
      const after = event.after || {};
      const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
        .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
      if (!keys.length) return h('span', { class: 'muted' }, '—');
      return h('ul', { class: 'changes' }, keys.slice(0, 6).map((key) => h('li', {},
        h('code', {}, key), ': ', format(before[key]), ' → ', format(after[key]))));
    }

    function format(value) {
      if (value === undefined || value === null) return '∅';
      if (typeof value === 'object') return JSON.stringify(value);
      return String(value);
    }

    const request = newestOnly();
    async function load(append) {
      const current = request();
      listError.replaceChildren();
      try {
        const filter = {};
        if (subject) filter.subjectId = subject;
        if (action.value.trim()) filter.action = action.value.trim();
        const data = await gql(`query Audit($after: String, $filter: AuditLogFilter) {
          auditLog(first: 50, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor }
            nodes { id occurredAt actor action subjectType subjectId before after source correlationId } } }`,
        { after: cursors[cursors.length - 1], filter });
        if (!current()) return;
        const page = data.auditLog;
        countLabel.textContent = `${page.totalCount} ${page.totalCount === 1 ? 'event' : 'events'}`;
        const items = page.nodes.map((event) => h('tr', { dataset: { action: event.action } },
          h('td', { 'data-label': 'When' }, when(event.occurredAt)),
          h('td', { 'data-label': 'What' }, h('code', {}, event.action)),
          h('td', { 'data-label': 'Subject' }, `${event.subjectType} `,
            h('span', { class: 'muted' }, event.after?.email || event.before?.email || event.after?.name || event.subjectId.slice(0, 8))),
          h('td', { 'data-label': 'Who' }, `${actor(event.actor)} `, h('span', { class: 'muted' }, `via ${event.source}`)),
          h('td', { 'data-label': 'Change' }, changes(event))));
        if (append) body.append(...items);
        else body.replaceChildren(...items);
        if (!body.children.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No events.')));
        more.hidden = !page.pageInfo.hasNextPage;
        more.dataset.cursor = page.pageInfo.endCursor || '';
      } catch (error) {
        listError.replaceChildren(errorText(error));
      }
    }

    load();
    return {
      element,
      refresh: () => { cursors.length = 1; load(); },
      onUserChange: () => { if (cursors.length === 1) { clearTimeout(timer); timer = setTimeout(load, 300); } },
    };
  }

  // ---------------------------------------------------------------- sign-in and routing

  function signInView(error) {
    const token = h('textarea', { id: 'token', rows: 4, placeholder: 'eyJhbGciOiJSUzI1NiIs…', 'aria-label': 'Session token', spellcheck: 'false' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const signInError = h('div', {}, error ? errorText(error) : null);
    const form = h('form', {
      class: 'panel signin',
      onsubmit: (event) => {
        event.preventDefault();
        const value = token.value.trim().replace(/^Bearer\s+/i, '');
        if (!value) {
          signInError.replaceChildren(errorText({ message: 'Paste a session token first.' }));
          return;
        }
        busy(submit, signInError, () => signIn(value, true));
      },
    },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste a Clerk session token (a JWT, as your application gets from Clerk). It stays in this browser tab.'),
    field('Session token', token), submit,
    config.localMode && config.adminToken ? h('button', {
      type: 'button',
      class: 'quiet',
      onclick: (event) => busy(event.target, signInError, () => signIn(config.adminToken, true)),
    }, 'Use the local admin token') : null,
    signInError);
    return { element: h('section', { class: 'view narrow' }, form) };
  }

  async function signIn(token, remember) {
    session.token = token;
    let data;
    try {
      data = await gql(`query Me { me { ${USER_FIELDS} } }`);
    } catch (error) {
      session.token = null;
      throw error;
    }
    session.me = data.me;
    if (remember) {
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.removeItem(SIGNED_OUT_KEY);
    }
    await loadOrganisations();
    showSession();
    live.connect();
    live.subscribe(`subscription Live { userChanged { kind source occurredAt previousOrganisationId user { ${USER_FIELDS} } } }`, {}, {
      onData: (payload) => {
        const change = payload.userChanged;
        if (change.user.id === session.me.id) {
          session.me = change.user;
          showSession();
        }
        currentView?.onUserChange?.(change);
      },
      onError: (error) => toast(`Live updates: ${error.message}`, 'error'),
    });
    route();
    return data.me;
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(SIGNED_OUT_KEY, '1');
    session.token = null;
    session.me = null;
    live.stop();
    showSession();
    mount(signInView());
  }

  function signedOutByServer(error) {
    sessionStorage.removeItem(TOKEN_KEY);
    session.token = null;
    session.me = null;
    live.stop();
    showSession();
    mount(signInView(error));
  }

  function showSession() {
    const me = session.me;
    const nav = document.getElementById('nav');
    const who = document.getElementById('whoami');
    nav.hidden = !me;
    who.hidden = !me;
    document.getElementById('sign-out').hidden = !me;
    document.getElementById('live').hidden = !me;
    if (!me) return;
    // Views this role may not use are taken out, not just hidden.
    nav.innerHTML = NAV_TEMPLATE;
    for (const link of nav.querySelectorAll('[data-needs]')) {
      const allowed = link.dataset.needs === 'admin' ? isAdmin() : isManager();
      if (!allowed) link.remove();
    }
    who.replaceChildren(
      h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(me)),
      h('span', { class: 'who-text' }, h('strong', { id: 'whoami-name' }, me.fullName), ' ', roleBadge(me.role),
        me.organisation ? h('span', { class: 'muted' }, ` ${me.organisation.name}`) : null));
    who.title = me.email;
  }

  function mount(view) {
    currentView?.destroy?.();
    currentView = view;
    const main = document.getElementById('view');
    main.replaceChildren(view.element);
    for (const link of document.querySelectorAll('#nav a')) {
      link.classList.toggle('current', link.dataset.view === view.name);
      if (link.dataset.view === view.name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  const VIEWS = {
    users: { build: usersView, allowed: () => true },
    invitations: { build: invitationsView, allowed: isManager },
    organisations: { build: organisationsView, allowed: () => true },
    sync: { build: syncView, allowed: isAdmin },
    audit: { build: auditView, allowed: isAdmin },
  };

  function route() {
    if (!session.me) return;
    const name = location.pathname.replace(/^\/admin\/?/, '').split('/')[0] || 'users';
    const view = VIEWS[name];
    if (!view || !view.allowed()) {
      history.replaceState(null, '', '/admin/users');
      return route();
    }
    const built = view.build(new URLSearchParams(location.search));
    built.name = name;
    mount(built);
    document.title = `userhub · ${name}`;
  }

  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-link]');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    if (link.href !== location.href) history.pushState(null, '', link.href);
    route();
  });
  window.addEventListener('popstate', route);
  document.getElementById('sign-out').addEventListener('click', signOut);

  async function start() {
    const stored = sessionStorage.getItem(TOKEN_KEY);
    const signedOut = sessionStorage.getItem(SIGNED_OUT_KEY) === '1';
    const token = stored || (config.localMode && !signedOut ? config.adminToken : null);
    if (!token) {
      mount(signInView());
      return;
    }
    try {
      await signIn(token, Boolean(stored));
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      mount(signInView(error));
    }
  }

  start();
})();
