// DOM helpers: elements, badges, dialogs, toasts, and the busy state of a button.

import { ROLE_LABELS } from './state.js';

export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name === 'value' || name === 'checked' || name === 'disabled') element[name] = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function choice(options, selected, attributes) {
  return h('select', attributes, options.map(([value, label]) =>
    h('option', { value, selected: value === selected }, label)));
}

export function field(label, control) {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

export function errorText(error) {
  return h('p', { class: 'error', role: 'alert' }, describeError(error));
}

export function describeError(error) {
  if (!error) return '';
  const code = error.code ? ` (${error.code})` : '';
  return `${error.message}${code}`;
}

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function initials(user) {
  const words = [user.firstName, user.lastName].filter(Boolean);
  const letters = words.length ? words.map((word) => word[0]) : [user.email[0]];
  return letters.join('').toUpperCase().slice(0, 2);
}

export function roleBadge(role) {
  return h('span', { class: `badge role role-${role.toLowerCase()}` }, ROLE_LABELS[role] || role);
}

export function statusOf(user) {
  if (!user.isActive) return 'removed';
  return user.isSuspended ? 'suspended' : 'active';
}

export function statusBadge(user) {
  const status = statusOf(user);
  const label = { active: 'Active', suspended: 'Suspended', removed: 'Removed' }[status];
  return h('span', { class: `badge status status-${status}` }, h('span', { class: 'dot' }), label);
}

export function toast(text, kind = 'info') {
  const item = h('div', { class: `toast toast-${kind}` }, text);
  document.getElementById('toasts').append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 6000);
}

export function confirmAction(title, text, okLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(answer);
    };
    const onOk = () => finish(true);
    const onCancel = (event) => { event.preventDefault(); finish(false); };
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    cancel.focus();
  });
}

// Runs `action` with `button` disabled, showing any error in `errorSlot` (replacing what was there).
export async function busy(button, errorSlot, action) {
  if (errorSlot) errorSlot.replaceChildren();
  button.disabled = true;
  button.classList.add('busy');
  try {
    return await action();
  } catch (error) {
    if (errorSlot) errorSlot.replaceChildren(errorText(error));
    else toast(describeError(error), 'error');
    return undefined;
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
  }
}

// Lists reload on every keystroke and filter change; only the newest request's answer may be
// drawn, whatever order the answers come back in.
export function newestOnly() {
  let latest = 0;
  return () => {
    latest += 1;
    const mine = latest;
    return () => mine === latest;
  };
}
