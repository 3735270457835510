// The invitation panel of the Users view: invite people, see and revoke pending invitations.

import { gql, post } from '../api.js';
import { INVITE_USERS, PENDING_INVITATIONS, REVOKE_INVITATION } from '../documents.js';
import { busy, choice, confirmAction, errorText, field, h, newestOnly, roleBadge, toast, when } from '../dom.js';
import { grantableRoles, isAdmin, organisationOptions } from '../roles.js';
import { ROLE_LABELS, config, session } from '../state.js';

export function invitePanel({ onInvited }) {
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
      const data = await gql(INVITE_USERS, { inputs });
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
      const data = await gql(PENDING_INVITATIONS);
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
            await gql(REVOKE_INVITATION, { id: invitation.id });
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
