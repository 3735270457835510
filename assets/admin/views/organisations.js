// The Organisations view: list, create, rename and archive.

import { gql } from '../api.js';
import { ARCHIVE_ORGANISATION, CREATE_ORGANISATION, ORGANISATIONS, RENAME_ORGANISATION } from '../documents.js';
import { busy, confirmAction, errorText, field, h, newestOnly, toast, when } from '../dom.js';
import { isAdmin, loadOrganisations } from '../roles.js';

export function organisationsView() {
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
          const data = await gql(CREATE_ORGANISATION, { input });
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
      const data = await gql(ORGANISATIONS, { filter });
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
            await gql(ARCHIVE_ORGANISATION, { id: org.id });
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
          await gql(RENAME_ORGANISATION,
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
