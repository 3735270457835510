// The Sync view: Clerk against the database, and a sync run followed live.

import { gql } from '../api.js';
import { SYNC_PROGRESS, SYNC_RUN, SYNC_STATUS, SYNC_USERS } from '../documents.js';
import { busy, errorText, h, when } from '../dom.js';
import { live } from '../live.js';
import { session } from '../state.js';

export function syncView() {
  const bar = h('div', { class: 'bar', id: 'sync-bar' });
  const progress = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': 'Sync progress', id: 'sync-progress' }, bar);
  const label = h('p', { class: 'muted', id: 'sync-label' }, 'No sync has run yet.');
  const syncError = h('div');
  const statusError = h('div');
  const report = h('div', { id: 'sync-report' });
  const start = h('button', { type: 'button', class: 'primary', id: 'sync-start', onclick: () => run() }, 'Sync users');
  const check = h('button', { type: 'button', class: 'quiet', id: 'sync-check', onclick: () => status() }, 'Check status');
  let pollTimer;

  const element = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', {}, 'Sync with Clerk')),
    h('div', { class: 'panel' },
      h('p', {}, 'A sync reads every Clerk user and brings userhub in line: new users are created, changed ones updated, and users gone from Clerk deactivated. Webhooks keep things in step between syncs.'),
      h('div', { class: 'row-actions' }, start, check),
      progress, label, syncError),
    h('div', { class: 'panel' }, h('h2', {}, 'Status report'), statusError, report));

  function show(run, percent, total) {
    const value = run.status === 'RUNNING' ? (percent ?? 0) : 100;
    bar.style.width = `${Math.max(0, Math.min(100, value))}%`;
    progress.setAttribute('aria-valuenow', String(Math.round(value)));
    progress.dataset.status = run.status;
    const counts = `${run.seen}${total != null ? ` of ${total}` : ''} Clerk users read · ${run.created} created · ${run.updated} updated · ${run.deactivated} deactivated`;
    const texts = {
      RUNNING: `Running (${Math.round(value)}%): ${counts}`,
      SUCCEEDED: `Finished ${when(run.finishedAt)}: ${counts}`,
      FAILED: `Failed ${when(run.finishedAt)}: ${run.error || 'no reason given'}`,
    };
    label.textContent = texts[run.status] || run.status;
    label.className = run.status === 'FAILED' ? 'error' : 'muted';
    start.disabled = run.status === 'RUNNING';
    if (run.status !== 'RUNNING') clearInterval(pollTimer);
  }

  const unsubscribe = live.subscribe(SYNC_PROGRESS, {}, {
    onData: (data) => show(data.syncProgress.run, data.syncProgress.percent, data.syncProgress.total),
    onError: (error) => syncError.replaceChildren(errorText({ message: error.message, code: error.extensions?.code })),
  });

  async function run() {
    await busy(start, syncError, async () => {
      const data = await gql(SYNC_USERS);
      show(data.syncUsers, 0, null);
      // Without the WebSocket, follow the run by asking.
      if (live.status !== 'live') {
        clearInterval(pollTimer);
        pollTimer = setInterval(async () => {
          try {
            const polled = await gql(SYNC_RUN, { id: data.syncUsers.id });
            show(polled.syncRun, null, null);
          } catch (error) {
            clearInterval(pollTimer);
            syncError.replaceChildren(errorText(error));
          }
        }, 1000);
      }
    });
    start.disabled = progress.dataset.status === 'RUNNING';
  }

  function drift(title, explanation, entry) {
    return h('div', { class: `drift ${entry.count ? 'has-drift' : ''}` },
      h('div', { class: 'drift-count' }, String(entry.count)),
      h('div', {}, h('strong', {}, title), h('p', { class: 'muted' }, explanation),
        entry.sample.length ? h('p', { class: 'sample' }, entry.sample.join(', ') + (entry.count > entry.sample.length ? ', …' : '')) : null));
  }

  async function status() {
    await busy(check, statusError, async () => {
      report.replaceChildren(h('p', { class: 'muted' }, 'Reading every Clerk user…'));
      const data = await gql(SYNC_STATUS);
      const s = data.syncStatus;
      report.replaceChildren(
        h('p', { class: `verdict ${s.inSync ? 'in-sync' : 'drifted'}`, id: 'sync-verdict' },
          s.inSync ? '✓ userhub and Clerk agree.' : '⚠ userhub and Clerk differ: a sync would fix this.'),
        h('p', {}, `Clerk has ${s.clerkCount} users; userhub has ${s.databaseCount} active users.`),
        h('div', { class: 'drifts' },
          drift('Missing here', 'In Clerk, not active in userhub.', s.missingInDatabase),
          drift('Gone from Clerk', 'Active here, deleted in Clerk.', s.missingInClerk),
          drift('Differing', 'In both, with different data.', s.differing),
          drift('Unknown organisations', 'Clerk names an organisation userhub does not have.', s.unknownOrganisations)),
        h('p', { class: 'muted' }, s.lastRun ? `Last sync: ${s.lastRun.status.toLowerCase()} ${when(s.lastRun.finishedAt || s.lastRun.startedAt)}, by ${s.lastRun.triggeredBy === session.me.id ? 'you' : s.lastRun.triggeredBy}.` : 'No sync has run yet.'));
    });
  }

  return {
    element,
    destroy: () => { unsubscribe(); clearInterval(pollTimer); },
    refresh: () => {},
  };
}
