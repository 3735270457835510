// userhub's admin console: a client of userhub's own GraphQL API, with no dependencies and no
// build step (ES modules, as the browser loads them). Queries and mutations go over HTTP; live
// changes and sync progress over the WebSocket (graphql-transport-ws). What the page offers
// follows the caller's role; the API decides. This module signs in and out and routes between
// the views (views/*.js).

import { gql, whenSignedOutByServer } from './api.js';
import { ME, USER_CHANGED } from './documents.js';
import { busy, errorText, field, h, initials, roleBadge, toast } from './dom.js';
import { live } from './live.js';
import { isAdmin, isManager, loadOrganisations } from './roles.js';
import { SIGNED_OUT_KEY, TOKEN_KEY, config, session } from './state.js';
import { auditView } from './views/audit.js';
import { dashboardView } from './views/dashboard.js';
import { importView } from './views/import.js';
import { invitationsView } from './views/invitations.js';
import { organisationsView } from './views/organisations.js';
import { syncView } from './views/sync.js';
import { usersView } from './views/users.js';
import { workloadView } from './views/workload.js';

const NAV_TEMPLATE = document.getElementById('nav').innerHTML;
let currentView = null;


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
    data = await gql(ME);
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
  live.subscribe(USER_CHANGED, {}, {
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
  dashboard: { build: dashboardView, allowed: isManager },
  workload: { build: workloadView, allowed: isManager },
  import: { build: importView, allowed: isManager },
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
whenSignedOutByServer(signedOutByServer);
// After a reconnection the view reloads: changes made while offline were not heard.
live.onReconnect = () => currentView?.refresh?.();

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
