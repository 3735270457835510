// What every conformance test shares: the addresses `run.mjs` started, and small helpers to
// talk to userhub and to the Clerk emulator the way a test arranges its world.

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through run.mjs (npm test)`);
  return value;
}

export const userhubUrl = required('USERHUB_URL');
export const graphqlUrl = `${userhubUrl}/graphql`;
export const websocketUrl = graphqlUrl.replace(/^http/, 'ws');
export const emulatorUrl = required('CLERK_EMULATOR_URL');
export const adminToken = required('ADMIN_TOKEN');
const clerkSecret = required('CLERK_SECRET_KEY');

/** One GraphQL operation over HTTP as the admin; throws on any GraphQL error. */
export async function graphql(query, variables = {}, token = adminToken) {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (!response.ok || body.errors) {
    throw new Error(`${response.status}: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data;
}

/** A call to the emulator: Clerk's Backend API under `/v1`, its own switches under `/__emulator`. */
export async function emulator(method, path, body) {
  const response = await fetch(`${emulatorUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${clerkSecret}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`emulator ${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

let counter = 0;

/** A person who signs up in Clerk: the emulator's webhook brings them to userhub. */
export async function clerkUser(prefix, metadata = {}) {
  counter += 1;
  const email = `${prefix}.${process.pid}.${counter}@conformance.userhub.test`.toLowerCase();
  const user = await emulator('POST', '/v1/users', {
    email_address: [email],
    first_name: prefix,
    last_name: `Person${counter}`,
    public_metadata: metadata,
  });
  return { clerkId: user.id, email };
}

/** Polls until `check` returns a value other than undefined, or gives up after `ms`. */
export async function eventually(check, ms = 10_000, what = 'the condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The userhub user with this email, once the webhook has brought them in. */
export async function userByEmail(email) {
  return eventually(async () => {
    const data = await graphql(
      'query ($search: String!) { users(first: 1, filter: { search: $search }) { nodes { id email role isActive organisation { id name } } } }',
      { search: email },
    );
    return data.users.nodes[0];
  }, 10_000, `${email} to arrive by webhook`);
}
