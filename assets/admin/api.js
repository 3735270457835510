// userhub's API over HTTP: GraphQL (`gql`) and the console's JSON routes (`post`).

import { session } from './state.js';

// Called when the server no longer accepts the session (set by main.js).
let signedOutHandler = () => {};

export function whenSignedOutByServer(handler) {
  signedOutHandler = handler;
}

export class ApiError extends Error {
  constructor(message, code, fieldName) {
    super(message);
    this.code = code;
    this.field = fieldName;
  }
}

export async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new ApiError(`userhub cannot be reached (${error.message}); check that the server is running`, 'NETWORK');
  }
  let body;
  try {
    body = await response.json();
  } catch (_) {
    throw new ApiError(`userhub answered HTTP ${response.status} without a GraphQL response`, `HTTP_${response.status}`);
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const error = new ApiError(first.message, first.extensions?.code || 'ERROR', first.extensions?.field);
    if (error.code === 'UNAUTHENTICATED' && session.me) signedOutHandler(error);
    throw error;
  }
  if (body.error) throw new ApiError(body.error.message, body.error.code);
  return body.data;
}

// A request to one of userhub's own routes with the session as a Bearer token; an answer
// other than 2xx becomes an ApiError with the route's JSON error.
async function request(path, init = {}) {
  let response;
  try {
    response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${session.token}` } });
  } catch (error) {
    throw new ApiError(`userhub cannot be reached (${error.message})`, 'NETWORK');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(body.error?.message || `HTTP ${response.status}`, body.error?.code || `HTTP_${response.status}`);
  }
  return response;
}

export async function post(path, payload) {
  const response = await request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload || {}),
  });
  return response.json().catch(() => ({}));
}

// Posts CSV text; answers the route's JSON.
export async function postCsv(path, csv) {
  const response = await request(path, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: csv });
  return response.json();
}

// Downloads a route's answer as a Blob.
export async function getBlob(path) {
  return (await request(path)).blob();
}
