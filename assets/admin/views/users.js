// The Users view: the directory, its filters, and the changes a manager may make to a person.

import { gql } from '../api.js';
import { REMOVE_USER, SUSPEND_USER, UNSUSPEND_USER, UPDATE_USER, USERS } from '../documents.js';
import { busy, choice, confirmAction, errorText, field, h, initials, newestOnly, roleBadge, statusBadge, statusOf } from '../dom.js';
import { describeChange, sameAsShown } from '../live.js';
import { grantableRoles, isAdmin, isManager, mayManage, organisationOptions } from '../roles.js';
import { PAGE_SIZE, ROLES, ROLE_LABELS } from '../state.js';
import { invitePanel } from './invite.js';

export const STATUS_FILTERS = [
  ['current', 'Active and suspended'],
  ['active', 'Active'],
  ['suspended', 'Suspended'],
  ['removed', 'Removed'],
  ['all', 'Everyone'],
];

export function statusFilter(status) {
  switch (status) {
    case 'active': return { isActive: true, isSuspended: false };
    case 'suspended': return { isActive: true, isSuspended: true };
    case 'removed': return { isActive: false };
    case 'all': return {};
    default: return { isActive: true };
  }
}

export function usersView(params) {
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
      const data = await gql(USERS, {
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
      const data = await gql(UPDATE_USER, { id: user.id, input });
      replaceRow(data.updateUser, describeChange({ kind: 'UPDATED', source: 'api', user: data.updateUser }, user));
    } catch (error) {
      control.disabled = false;
      control.value = 'role' in input ? user.role : (user.organisationId || '');
      rowError.replaceChildren(errorText(error));
    }
  }

  async function suspend(user, suspended, button, rowError) {
    if (suspended && !(await confirmAction(`Suspend ${user.fullName}?`,
      `${user.email} is banned in Clerk: their sessions end and they cannot sign in until unsuspended.`, 'Suspend'))) return;
    await busy(button, rowError, async () => {
      const data = await gql(suspended ? SUSPEND_USER : UNSUSPEND_USER, { id: user.id });
      replaceRow(data.user, describeChange({ kind: suspended ? 'SUSPENDED' : 'UNSUSPENDED', source: 'api', user: data.user }, user));
    });
  }

  async function remove(user, button, rowError) {
    if (!(await confirmAction(`Remove ${user.fullName}?`,
      `${user.email} is deleted in Clerk and deactivated here. Their record and history stay; this cannot be undone from this page.`, 'Remove'))) return;
    await busy(button, rowError, async () => {
      const data = await gql(REMOVE_USER, { id: user.id });
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
