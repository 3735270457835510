// The Audit view: every recorded change, newest first, filtered.

import { gql } from '../api.js';
import { AUDIT_LOG } from '../documents.js';
import { errorText, field, h, newestOnly, when } from '../dom.js';
import { session } from '../state.js';

export function auditView(params) {
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
      const data = await gql(AUDIT_LOG,
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
