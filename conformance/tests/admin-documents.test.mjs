// The admin console's GraphQL documents (assets/admin/documents.js) against the schema the
// server serves (schema.graphql, kept in sync with the code by a Rust test): a document the
// schema no longer accepts fails here, before a person finds a broken view. Needs no server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate } from 'graphql';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const consoleDir = join(root, 'assets', 'admin');
const schema = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));

// The console's modules are browser ES modules outside any package; loaded from their text.
const documents = await import(
  `data:text/javascript,${encodeURIComponent(readFileSync(join(consoleDir, 'documents.js'), 'utf8'))}`
);
// Selections shared by several documents, not documents themselves.
const SELECTIONS = new Set(['USER_FIELDS', 'RUN_FIELDS', 'STATS_FIELDS']);
const operations = Object.entries(documents).filter(([name]) => !SELECTIONS.has(name));

function problems(source) {
  let document;
  try {
    document = parse(source);
  } catch (error) {
    return [error.message];
  }
  return validate(schema, document).map((error) => error.message);
}

function consoleModules(folder = consoleDir) {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return consoleModules(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

test('the console has its documents', () => {
  assert.ok(operations.length >= 20, `only ${operations.length} documents found`);
});

for (const [name, source] of operations) {
  test(`${name} is valid against schema.graphql`, () => {
    assert.deepEqual(problems(source), [], source);
  });
}

test('a document the schema does not accept is refused (the check is not empty)', () => {
  const renamed = documents.USERS.replace('totalCount', 'totalUsers');
  assert.notEqual(renamed, documents.USERS);
  assert.match(problems(renamed).join('\n'), /totalUsers/);
  assert.notDeepEqual(problems('query { nothingHere }'), []);
});

test('every document is used, and none is written anywhere but documents.js', () => {
  const others = consoleModules().filter((path) => !path.endsWith('documents.js'));
  const code = others.map((path) => [relative(consoleDir, path), readFileSync(path, 'utf8')]);
  for (const [name] of operations) {
    assert.ok(
      code.some(([, text]) => new RegExp(`\\b${name}\\b`).test(text)),
      `${name} is not used by any module`,
    );
  }
  const inline = /[`'"]\s*(query|mutation|subscription)\b[\s\w$]*[({]/;
  for (const [path, text] of code) {
    assert.doesNotMatch(text, inline, `${path} holds a GraphQL document: move it to documents.js`);
  }
});
