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

export async function post(path, payload) {
  let response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session.token}` },
      body: JSON.stringify(payload || {}),
    });
  } catch (error) {
    throw new ApiError(`userhub cannot be reached (${error.message})`, 'NETWORK');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(body.error?.message || `HTTP ${response.status}`, body.error?.code || `HTTP_${response.status}`);
  }
  return body;
}
