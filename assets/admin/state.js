// What the whole console shares: the page's configuration, the session, and fixed names.

export const config = readConfig();
export const TOKEN_KEY = 'userhub.admin.token';
export const SIGNED_OUT_KEY = 'userhub.admin.signedOut';
export const PAGE_SIZE = 20;
export const ROLES = ['ADMIN', 'ORG_ADMIN', 'LECTURER', 'MEMBER'];
export const ROLE_LABELS = { ADMIN: 'Admin', ORG_ADMIN: 'Org admin', LECTURER: 'Lecturer', MEMBER: 'Member' };
export const SOURCE_LABELS = { api: 'in userhub', webhook: 'from Clerk', sync: 'by a sync', cli: 'from the command line' };

export const session = { token: null, me: null, organisations: [] };

export function readConfig() {
  try {
    return JSON.parse(document.getElementById('userhub-config').textContent);
  } catch (_) {
    return { localMode: false, adminToken: null };
  }
}
