// The Dashboard view: one organisation's counts, sign-ins by week and workload, kept current
// by the organisationStatsChanged subscription (the query answers while the socket is down).

import { gql } from '../api.js';
import { ORGANISATION_STATS, ORGANISATION_STATS_CHANGED } from '../documents.js';
import { choice, errorText, field, h, when } from '../dom.js';
import { live } from '../live.js';
import { organisationOptions } from '../roles.js';
import { ROLE_LABELS, session } from '../state.js';

function card(label, value, id) {
  return h('div', { class: 'stat', id }, h('div', { class: 'stat-value' }, String(value)), h('div', { class: 'muted' }, label));
}

// Sized through the CSSOM: the page's CSP refuses inline style attributes.
function bar(fraction) {
  const element = h('div', { class: 'week-bar' });
  element.style.height = `${Math.round(fraction * 100)}%`;
  return element;
}

function hours(value) {
  return value == null ? '—' : `${Number(value).toLocaleString(undefined, { maximumFractionDigits: 2 })} h`;
}

export function dashboardView(params) {
  const options = organisationOptions('Choose an organisation').filter(([id]) => id);
  let organisationId = params.get('org') || session.me.organisationId || options[0]?.[0] || '';
  const body = h('div', { id: 'dashboard-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const problem = h('div');
  const select = choice(options, organisationId, {
    'aria-label': 'Organisation',
    id: 'dashboard-organisation',
    onchange: () => {
      organisationId = select.value;
      history.replaceState(null, '', `/admin/dashboard?org=${organisationId}`);
      follow();
    },
  });
  const element = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', {}, 'Dashboard'), field('Organisation', select)),
    problem, body);

  function draw(stats) {
    const weeks = stats.signInsByWeek;
    const most = Math.max(1, ...weeks.map((week) => week.signIns));
    const workload = stats.workload;
    body.replaceChildren(
      h('div', { class: 'stats' },
        card('Members', stats.members, 'stat-members'),
        card('Pending invitations', stats.pendingInvitations, 'stat-pending'),
        card('Signed in, last 30 days', stats.signedInLast30Days, 'stat-recent'),
        card('Never signed in', stats.neverSignedIn, 'stat-never')),
      h('div', { class: 'panels' },
        h('div', { class: 'panel' }, h('h2', {}, 'People by role'),
          h('table', {},
            h('thead', {}, h('tr', {}, h('th', {}, 'Role'), h('th', {}, 'Active'), h('th', {}, 'Suspended'), h('th', {}, 'Removed'))),
            h('tbody', {}, stats.byRole.map((row) => h('tr', {},
              h('td', {}, ROLE_LABELS[row.role] || row.role), h('td', {}, String(row.active)),
              h('td', {}, String(row.suspended)), h('td', {}, String(row.removed))))))),
        h('div', { class: 'panel' }, h('h2', {}, 'Sign-ins by week'),
          h('div', { class: 'weeks', id: 'sign-in-weeks', role: 'img', 'aria-label': weeks.map((week) => `${week.weekStart.slice(0, 10)}: ${week.signIns}`).join(', ') },
            weeks.map((week) => h('div', { class: 'week', title: `Week of ${week.weekStart.slice(0, 10)}: ${week.signIns} sign-ins by ${week.people} people` },
              bar(week.signIns / most),
              h('span', { class: 'week-count' }, String(week.signIns)),
              h('span', { class: 'week-label muted' }, week.weekStart.slice(5, 10))))))),
      h('div', { class: 'panel', id: 'dashboard-workload' },
        h('h2', {}, `Workload ${workload.academicYear}`),
        h('p', {}, `${hours(workload.allocatedHours)} allocated against ${hours(workload.targetHours)} of targets; `,
          h('strong', {}, `${workload.overAllocatedCount} over-allocated`), `, ${workload.underAllocatedCount} under.`),
        workload.overAllocated.length
          ? h('ul', { class: 'over-list' }, workload.overAllocated.map((person) => h('li', {},
            h('strong', {}, person.user.fullName), ` ${hours(person.allocatedHours)} of ${hours(person.targetHours)} (+${hours(person.balanceHours)})`)))
          : h('p', { class: 'muted' }, 'Nobody is over-allocated.'),
        h('a', { href: `/admin/workload?org=${organisationId}`, 'data-link': true }, 'Open the workload →')),
      h('p', { class: 'muted', id: 'dashboard-computed' }, `Counted ${when(stats.computedAt)}${live.status === 'live' ? ' · live' : ''}`));
  }

  let unsubscribe = () => {};
  function follow() {
    unsubscribe();
    problem.replaceChildren();
    if (!organisationId) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No organisation to show.'));
      return;
    }
    const shown = organisationId;
    // The subscription's first message is the counts as they are; the query covers a socket
    // that is not up.
    gql(ORGANISATION_STATS, { id: shown })
      .then((data) => { if (shown === organisationId) draw(data.organisationStats); })
      .catch((error) => problem.replaceChildren(errorText(error)));
    unsubscribe = live.subscribe(ORGANISATION_STATS_CHANGED, { id: shown }, {
      onData: (data) => { if (shown === organisationId) draw(data.organisationStatsChanged); },
      onError: (error) => problem.replaceChildren(errorText({ message: error.message, code: error.extensions?.code })),
    });
  }
  follow();

  return { element, destroy: () => unsubscribe(), refresh: follow };
}
