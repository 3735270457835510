// What the signed-in person's role lets the page offer (the API enforces it either way).

import { gql } from './api.js';
import { ORGANISATION_CHOICES } from './documents.js';
import { ROLES, session } from './state.js';

export const isAdmin = () => session.me?.role === 'ADMIN';
export const isManager = () => isAdmin() || session.me?.role === 'ORG_ADMIN';

export function mayManage(user) {
  if (!user.isActive) return false;
  if (isAdmin()) return true;
  return session.me?.role === 'ORG_ADMIN'
    && user.organisationId === session.me.organisationId
    && user.role !== 'ADMIN';
}

export function grantableRoles() {
  return isAdmin() ? ROLES : ROLES.filter((role) => role !== 'ADMIN');
}

export function organisationOptions(noneLabel) {
  return [['', noneLabel], ...session.organisations.map((org) => [org.id, org.name])];
}

export async function loadOrganisations() {
  if (!isAdmin()) {
    session.organisations = session.me.organisation ? [session.me.organisation] : [];
    return;
  }
  const all = [];
  let after = null;
  for (let page = 0; page < 20; page += 1) {
    const data = await gql(ORGANISATION_CHOICES, { after });
    all.push(...data.organisations.nodes);
    if (!data.organisations.pageInfo.hasNextPage) break;
    after = data.organisations.pageInfo.endCursor;
  }
  session.organisations = all;
}
