// The Workload view: an organisation's academic year (allocated hours against each person's
// target), one person's activities and profile, and the allocation of a new activity. Follows
// live changes to the organisation's people.

import { gql } from '../api.js';
import { ALLOCATE_ACTIVITY, MEMBERS, ORGANISATION_WORKLOAD, PERSON_WORKLOAD, REMOVE_ACTIVITY, UPDATE_PROFILE } from '../documents.js';
import { busy, choice, confirmAction, errorText, field, h, newestOnly, toast, when } from '../dom.js';
import { organisationOptions } from '../roles.js';
import { session } from '../state.js';

const KINDS = ['TEACHING', 'ASSESSMENT', 'SUPERVISION', 'ADMINISTRATION', 'RESEARCH', 'OTHER'];
const BALANCE_LABELS = { OVER: 'Over', UNDER: 'Under', ON_TARGET: 'On target', NO_TARGET: 'No target' };

export function currentAcademicYear(now = new Date()) {
  const first = now.getUTCMonth() >= 8 ? now.getUTCFullYear() : now.getUTCFullYear() - 1;
  return `${first}/${String((first + 1) % 100).padStart(2, '0')}`;
}

function hours(value) {
  return value == null ? '—' : Number(value).toLocaleString(undefined, { maximumFractionDigits: 2 });
}

function balanceBadge(balance) {
  return h('span', { class: `badge balance balance-${balance.toLowerCase()}` }, BALANCE_LABELS[balance] || balance);
}

export function workloadView(params) {
  const options = organisationOptions('Choose an organisation').filter(([id]) => id);
  const state = {
    organisationId: params.get('org') || session.me.organisationId || options[0]?.[0] || '',
    year: params.get('year') || currentAcademicYear(),
    personId: params.get('person') || '',
  };
  const summary = h('p', { id: 'workload-summary', class: 'muted' });
  const tableBody = h('tbody', { id: 'workload-people' });
  const listError = h('div');
  const person = h('div', { class: 'panel', id: 'workload-person', hidden: true });
  const latest = newestOnly();

  const organisation = choice(options, state.organisationId, { 'aria-label': 'Organisation', onchange: () => { state.organisationId = organisation.value; state.personId = ''; load(); } });
  const year = h('input', { value: state.year, size: 8, 'aria-label': 'Academic year', pattern: '\\d{4}/\\d{2}', onchange: () => { state.year = year.value.trim(); load(); } });

  // Allocation.
  const who = h('select', { id: 'allocate-person', 'aria-label': 'Person' });
  const kind = choice(KINDS.map((k) => [k, k[0] + k.slice(1).toLowerCase()]), 'TEACHING', { id: 'allocate-kind' });
  const code = h('input', { id: 'allocate-code', placeholder: 'PH101', size: 8 });
  const name = h('input', { id: 'allocate-name', placeholder: 'Mechanics lectures', required: true });
  const term = h('input', { id: 'allocate-term', placeholder: 'Autumn', size: 8 });
  const amount = h('input', { id: 'allocate-hours', type: 'number', min: '0.01', max: '8760', step: 'any', required: true, size: 6 });
  const allocateError = h('div');
  const allocate = h('button', { type: 'submit', class: 'primary', id: 'allocate-submit' }, 'Allocate');
  const form = h('form', {
    class: 'panel allocate',
    onsubmit: (event) => {
      event.preventDefault();
      busy(allocate, allocateError, async () => {
        const input = {
          academicYear: state.year, kind: kind.value, name: name.value, hours: Number(amount.value),
          moduleCode: code.value.trim() || null, term: term.value.trim() || null,
        };
        await gql(ALLOCATE_ACTIVITY, { id: who.value, input });
        toast(`Allocated ${input.hours} h of ${input.name}.`);
        name.value = ''; amount.value = '';
        state.personId = who.value;
        await load();
      });
    },
  },
  h('h2', {}, 'Allocate an activity'),
  h('div', { class: 'form-row' }, field('Person', who), field('Kind', kind), field('Module', code), field('Name', name), field('Term', term), field('Hours', amount)),
  allocate, allocateError);

  const element = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', {}, 'Workload'), field('Organisation', organisation), field('Academic year', year)),
    summary, listError,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Person'), h('th', {}, 'Allocated (h)'), h('th', {}, 'Target (h)'), h('th', {}, 'Balance (h)'), h('th', {}, ''))),
      tableBody)),
    person, form);

  async function load() {
    if (!state.organisationId) {
      summary.textContent = 'No organisation to show.';
      return;
    }
    history.replaceState(null, '', `/admin/workload?org=${state.organisationId}&year=${encodeURIComponent(state.year)}${state.personId ? `&person=${state.personId}` : ''}`);
    const mine = latest();
    listError.replaceChildren();
    try {
      const [data, members] = await Promise.all([
        gql(ORGANISATION_WORKLOAD, { id: state.organisationId, year: state.year }),
        gql(MEMBERS, { org: state.organisationId }),
      ]);
      if (!mine()) return;
      const w = data.organisationWorkload;
      summary.textContent = `${hours(w.allocatedHours)} h allocated against ${hours(w.targetHours)} h of targets (a full-time year here is ${w.standardHours} h): ${w.overAllocatedCount} over, ${w.underAllocatedCount} under, ${w.onTargetCount} on target, ${w.withoutTargetCount} without a target.`;
      tableBody.replaceChildren(...(w.people.length ? w.people.map((p) => h('tr', { dataset: { userId: p.user.id } },
        h('td', { 'data-label': 'Person' }, h('strong', {}, p.user.fullName), h('div', { class: 'muted' }, p.user.email)),
        h('td', { 'data-label': 'Allocated' }, hours(p.allocatedHours)), h('td', { 'data-label': 'Target' }, hours(p.targetHours)),
        h('td', { 'data-label': 'Balance' }, p.balanceHours == null ? '—' : `${p.balanceHours > 0 ? '+' : ''}${hours(p.balanceHours)}`, ' ', balanceBadge(p.balance)),
        h('td', { 'data-label': '' }, h('button', { type: 'button', class: 'quiet', onclick: () => { state.personId = p.user.id; showPerson(); } }, 'Open'))))
        : [h('tr', { class: 'empty' }, h('td', { colspan: 5, class: 'muted' }, 'Nothing allocated yet and no targets set.'))]));
      const chosen = who.value || state.personId;
      who.replaceChildren(...members.users.nodes.map((m) => h('option', { value: m.id, selected: m.id === chosen }, `${m.fullName} (${m.email})`)));
      if (state.personId) await showPerson();
    } catch (error) {
      if (mine()) listError.replaceChildren(errorText(error));
    }
  }

  async function showPerson() {
    const data = await gql(PERSON_WORKLOAD, { id: state.personId, year: state.year }).catch((error) => {
      person.hidden = false;
      person.replaceChildren(errorText(error));
    });
    if (!data) return;
    const u = data.user;
    const w = u.workload;
    const fte = h('input', { type: 'number', min: '0.01', max: '1', step: 'any', value: u.profile?.contractFte ?? '', size: 5, id: 'profile-fte' });
    const target = h('input', { type: 'number', min: '0', max: '8760', step: '1', value: u.profile?.workloadTargetHours ?? '', size: 6, id: 'profile-target' });
    const staffId = h('input', { value: u.profile?.staffId ?? '', size: 10, maxlength: 64, id: 'profile-staff-id' });
    const jobTitle = h('input', { value: u.profile?.jobTitle ?? '', size: 18, maxlength: 200, id: 'profile-job-title' });
    const department = h('input', { value: u.profile?.department ?? '', size: 18, maxlength: 200, id: 'profile-department' });
    const contractStart = h('input', { type: 'date', value: u.profile?.contractStart ?? '', id: 'profile-contract-start' });
    const contractEnd = h('input', { type: 'date', value: u.profile?.contractEnd ?? '', id: 'profile-contract-end' });
    const save = h('button', { type: 'submit', class: 'quiet', id: 'profile-save' }, 'Save profile');
    const text = (input) => input.value.trim() || null;
    const saveError = h('div');
    person.hidden = false;
    person.replaceChildren(
      h('h2', {}, `${u.fullName}: ${hours(w.allocatedHours)} h of ${hours(w.targetHours)} h `, balanceBadge(w.balance)),
      h('form', {
        class: 'form-row',
        onsubmit: (event) => {
          event.preventDefault();
          busy(save, saveError, async () => {
            const number = (input) => (input.value === '' ? null : Number(input.value));
            await gql(UPDATE_PROFILE, {
              id: u.id,
              input: {
                staffId: text(staffId), jobTitle: text(jobTitle), department: text(department),
                contractFte: number(fte), contractStart: contractStart.value || null, contractEnd: contractEnd.value || null,
                workloadTargetHours: number(target),
              },
            });
            toast(`Saved ${u.fullName}'s profile.`);
            await load();
          });
        },
        id: 'profile-form',
      }, h('h3', {}, 'Profile'),
      field('Staff id', staffId), field('Job title', jobTitle), field('Department', department),
      field('Contract FTE', fte), field('Contract start', contractStart), field('Contract end', contractEnd),
      field('Own target (h)', target), save),
      u.profile?.accessUntil ? h('p', { class: 'muted', id: 'profile-access-until' }, `Access ends ${when(u.profile.accessUntil)}.`) : null,
      saveError,
      w.activities.length
        ? h('table', { id: 'person-activities' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Term'), h('th', {}, 'Kind'), h('th', {}, 'Module'), h('th', {}, 'Name'), h('th', {}, 'Hours'), h('th', {}, ''))),
          h('tbody', {}, w.activities.map((a) => h('tr', {},
            h('td', {}, a.term || '—'), h('td', {}, a.kind[0] + a.kind.slice(1).toLowerCase()), h('td', {}, a.moduleCode || '—'),
            h('td', {}, a.name), h('td', {}, hours(a.hours)),
            h('td', {}, h('button', {
              type: 'button',
              class: 'quiet danger',
              onclick: async (event) => {
                if (!(await confirmAction('Take this activity away?', `${a.name} (${hours(a.hours)} h) from ${u.fullName}.`, 'Take away'))) return;
                await busy(event.target, null, async () => { await gql(REMOVE_ACTIVITY, { id: a.id }); await load(); });
              },
            }, 'Remove'))))))
        : h('p', { class: 'muted' }, `Nothing allocated in ${state.year}.`));
  }

  load();
  return {
    element,
    refresh: load,
    onUserChange: (change) => {
      const touches = change.user.organisationId === state.organisationId || change.previousOrganisationId === state.organisationId;
      if (touches) load();
    },
  };
}
