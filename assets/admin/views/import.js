// The Import/Export view: the users (and, for admins, the audit log) as CSV downloads, and a
// CSV of people checked (a dry run) and then imported, each line's outcome shown and the
// running import followed live.

import { ApiError, getBlob, gql, postCsv } from '../api.js';
import { BULK_JOB, BULK_JOB_PROGRESS } from '../documents.js';
import { busy, errorText, h, toast, when } from '../dom.js';
import { live } from '../live.js';
import { isAdmin } from '../roles.js';

// The lines shown at once: a big file's outcomes are filtered, not all drawn.
const SHOWN = 200;

const OUTCOME_LABELS = {
  WOULD_CHANGE: 'Would change',
  CHANGED: 'Done',
  UNCHANGED: 'Unchanged',
  REFUSED: 'Refused',
};

async function download(path, filename, button, errorBox) {
  await busy(button, errorBox, async () => {
    const url = URL.createObjectURL(await getBlob(path));
    const link = h('a', { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}

function upload(csv, dryRun) {
  return postCsv(`/api/imports/users.csv${dryRun ? '?dryRun=true' : ''}`, csv);
}

export function importView() {
  const today = new Date().toISOString().slice(0, 10);
  const exportError = h('div');
  const usersButton = h('button', { type: 'button', class: 'primary', id: 'export-users' }, 'Download users (CSV)');
  usersButton.addEventListener('click', () =>
    download('/api/exports/users.csv', `users-${today}.csv`, usersButton, exportError));
  const auditButton = isAdmin()
    ? h('button', { type: 'button', class: 'quiet', id: 'export-audit' }, 'Download audit log (CSV)')
    : null;
  auditButton?.addEventListener('click', () =>
    download('/api/exports/audit.csv', `audit-${today}.csv`, auditButton, exportError));

  const file = h('input', { type: 'file', accept: '.csv,text/csv', id: 'import-file' });
  const text = h('textarea', {
    id: 'import-text', rows: 6, spellcheck: 'false',
    placeholder: 'email,first_name,last_name,role,organisation_slug,staff_id\nada@uni.example,Ada,Lovelace,LECTURER,physics,P-001',
  });
  const check = h('button', { type: 'button', class: 'quiet', id: 'import-check' }, 'Check (dry run)');
  const run = h('button', { type: 'button', class: 'primary', id: 'import-run', disabled: true }, 'Import');
  const importError = h('div');
  const bar = h('div', { class: 'bar' });
  const progress = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': 'Import progress', id: 'import-progress', hidden: true }, bar);
  const summary = h('p', { class: 'muted', id: 'import-summary' });
  const onlyRefused = h('input', { type: 'checkbox', id: 'import-only-refused' });
  const results = h('div', { class: 'table-wrap', id: 'import-results', hidden: true });
  let checked = null;
  let shownJob = null;
  let unsubscribe = () => {};
  let pollTimer;

  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    if (chosen) text.value = await chosen.text();
    checked = null;
    run.disabled = true;
  });
  text.addEventListener('input', () => { checked = null; run.disabled = true; });
  onlyRefused.addEventListener('change', () => shownJob && show(shownJob));

  function show(job) {
    shownJob = job;
    const planned = job.dryRun;
    const value = job.total ? (100 * job.done) / job.total : 100;
    progress.hidden = planned;
    bar.style.width = `${Math.round(value)}%`;
    progress.setAttribute('aria-valuenow', String(Math.round(value)));
    progress.dataset.status = job.status;
    const counts = planned
      ? `${job.total} lines: ${job.changed} would change, ${job.unchanged} unchanged, ${job.refused} refused.`
      : `${job.done} of ${job.total} lines: ${job.changed} done, ${job.unchanged} unchanged, ${job.refused} refused.`;
    const states = {
      RUNNING: `Importing… ${counts}`,
      SUCCEEDED: planned ? `Checked: ${counts}` : `Imported ${when(job.finishedAt)}: ${counts}`,
      FAILED: `Stopped: ${job.error || 'no reason given'}. ${counts}`,
    };
    summary.textContent = states[job.status] || job.status;
    summary.className = job.status === 'FAILED' ? 'error' : 'muted';
    summary.dataset.status = job.status;
    const rows = (job.results || []).filter((row) => !onlyRefused.checked || row.outcome === 'REFUSED');
    results.hidden = false;
    results.replaceChildren(h('table', { class: 'data', id: 'import-table' },
      rows.length > SHOWN ? h('caption', {}, `The first ${SHOWN} of ${rows.length} lines.`) : null,
      h('thead', {}, h('tr', {}, ['Line', 'Email', 'Action', 'Outcome', 'Reason'].map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, rows.length
        ? rows.slice(0, SHOWN).map((row) => h('tr', { dataset: { outcome: row.outcome } },
          h('td', { 'data-label': 'Line' }, String(row.line ?? '')),
          h('td', { 'data-label': 'Email' }, row.email || '—'),
          h('td', { 'data-label': 'Action' }, row.action === 'INVITE' ? 'Invite' : row.action === 'UPDATE' ? 'Update' : '—'),
          h('td', { 'data-label': 'Outcome' }, h('span', { class: `badge outcome-${row.outcome.toLowerCase()}` }, OUTCOME_LABELS[row.outcome] || row.outcome)),
          h('td', { 'data-label': 'Reason' }, row.message ? `${row.message}${row.code ? ` (${row.code})` : ''}` : '')))
        : h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No lines to show.')))));
    if (job.status !== 'RUNNING') clearInterval(pollTimer);
  }

  async function dryRun() {
    await busy(check, importError, async () => {
      const csv = text.value;
      if (!csv.trim()) throw new ApiError('Choose a CSV file or paste its lines first.', 'EMPTY');
      const plan = await upload(csv, true);
      checked = csv;
      show(plan);
      run.disabled = plan.changed === 0;
    });
  }

  function follow(id) {
    unsubscribe();
    unsubscribe = live.subscribe(BULK_JOB_PROGRESS, { id }, {
      onData: (data) => show(data.bulkJobProgress),
      onError: (error) => importError.replaceChildren(errorText({ message: error.message, code: error.extensions?.code })),
    });
    // Without the WebSocket, follow the job by asking.
    if (live.status !== 'live') {
      clearInterval(pollTimer);
      pollTimer = setInterval(async () => {
        try {
          show((await gql(BULK_JOB, { id })).bulkJob);
        } catch (error) {
          clearInterval(pollTimer);
          importError.replaceChildren(errorText(error));
        }
      }, 1000);
    }
  }

  async function start() {
    let started = false;
    await busy(run, importError, async () => {
      if (checked == null) throw new ApiError('Check the file first: the import does what the check showed.', 'NOT_CHECKED');
      const job = await upload(checked, false);
      started = true;
      show(job);
      toast(`Importing ${job.total} lines: invitations go to Clerk ten at a time.`);
      follow(job.id);
    });
    // Once started, the same file is not imported twice from one check.
    if (started) {
      checked = null;
      run.disabled = true;
    }
  }

  check.addEventListener('click', dryRun);
  run.addEventListener('click', start);

  const element = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', {}, 'Import and export')),
    h('div', { class: 'panel', id: 'export-panel' },
      h('h2', {}, 'Export'),
      h('p', {}, isAdmin()
        ? 'Every user as CSV, with their profile and activity; the audit log as CSV.'
        : 'Your organisation\'s users as CSV, with their profiles and activity.'),
      h('div', { class: 'row-actions' }, usersButton, auditButton),
      exportError),
    h('div', { class: 'panel', id: 'import-panel' },
      h('h2', {}, 'Import'),
      h('p', {}, 'A CSV whose first line names its columns: ', h('code', {}, 'email'), ' and any of ',
        h('code', {}, 'first_name, last_name, role, organisation_id, organisation_slug, staff_id'),
        '. A users export imports as it is. New people are invited; people already here get the line\'s names, role, organisation and staff id. Check first: nothing is sent until you import.'),
      h('label', { class: 'field' }, h('span', {}, 'CSV file'), file),
      h('label', { class: 'field' }, h('span', {}, 'or its lines'), text),
      h('div', { class: 'row-actions' }, check, run,
        h('label', { class: 'inline' }, onlyRefused, ' Only refused lines')),
      importError, progress, summary, results));

  return {
    element,
    destroy: () => { unsubscribe(); clearInterval(pollTimer); },
    refresh: () => {},
  };
}
