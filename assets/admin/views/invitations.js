// The Invitations view: every invitation the caller may read, by status.

import { gql } from '../api.js';
import { INVITATIONS } from '../documents.js';
import { errorText, field, h, newestOnly, roleBadge, when } from '../dom.js';
import { invitePanel } from './invite.js';

export function invitationsView() {
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
      const data = await gql(INVITATIONS, { after: cursors[cursors.length - 1], filter });
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
