// Apollo Client (@apollo/client 4) as a frontend app wires it: an HTTP link for queries and
// mutations, a graphql-ws link for subscriptions, split by operation type, and the normalised
// cache in between.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { adminToken, clerkUser, graphql, graphqlUrl, userByEmail, websocketUrl } from '../lib/userhub.mjs';

const wsClient = createClient({
  url: websocketUrl,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${adminToken}` },
  retryAttempts: 0,
});
const link = ApolloLink.split(
  ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
  },
  new GraphQLWsLink(wsClient),
  new HttpLink({ uri: graphqlUrl, headers: { authorization: `Bearer ${adminToken}` } }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

after(async () => {
  client.stop();
  await wsClient.dispose();
});

const USERS_WITH_ORGANISATIONS = gql`
  query UsersWithOrganisations($first: Int!, $organisationId: ID) {
    users(first: $first, filter: { organisationId: $organisationId }, orderBy: EMAIL_ASC) {
      totalCount
      nodes { id email role organisation { id name memberCount } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

let organisation;
const members = [];

test('set-up: an organisation with three members, brought in by webhook', async () => {
  const created = await graphql(
    'mutation ($name: String!) { createOrganisation(input: { name: $name }) { id name } }',
    { name: `Apollo School ${process.pid}` },
  );
  organisation = created.createOrganisation;
  for (const label of ['Apolloa', 'Apollob', 'Apolloc']) {
    const person = await clerkUser(label, { role: 'lecturer', organisationId: organisation.id });
    members.push(await userByEmail(person.email));
  }
  assert.deepEqual(
    members.map((member) => member.organisation?.id),
    [organisation.id, organisation.id, organisation.id],
  );
});

test('a query with a batched relation fills the normalised cache', async () => {
  const { data } = await client.query({
    query: USERS_WITH_ORGANISATIONS,
    variables: { first: 10, organisationId: organisation.id },
  });
  assert.equal(data.users.totalCount, 3);
  assert.equal(data.users.pageInfo.hasNextPage, false);
  assert.deepEqual(
    data.users.nodes.map((user) => user.email),
    members.map((member) => member.email).sort(),
  );
  for (const user of data.users.nodes) {
    assert.equal(user.__typename, 'User');
    assert.equal(user.role, 'LECTURER');
    assert.deepEqual(
      { ...user.organisation },
      { __typename: 'Organisation', id: organisation.id, name: organisation.name, memberCount: 3 },
    );
  }
  // One Organisation entry in the cache, shared by the three users.
  const cached = client.cache.extract();
  assert.deepEqual(cached[`Organisation:${organisation.id}`], {
    __typename: 'Organisation',
    id: organisation.id,
    name: organisation.name,
    memberCount: 3,
  });
  assert.deepEqual(cached[`User:${members[0].id}`].organisation, { __ref: `Organisation:${organisation.id}` });
});

test('a mutation updates the cached user in place', async () => {
  const target = members[0];
  const { data } = await client.mutate({
    mutation: gql`
      mutation Promote($id: ID!) { updateUser(id: $id, input: { role: ORG_ADMIN }) { id role } }
    `,
    variables: { id: target.id },
  });
  assert.deepEqual({ ...data.updateUser }, { __typename: 'User', id: target.id, role: 'ORG_ADMIN' });
  assert.equal(client.cache.extract()[`User:${target.id}`].role, 'ORG_ADMIN');
  const { data: reread } = await client.query({
    query: USERS_WITH_ORGANISATIONS,
    variables: { first: 10, organisationId: organisation.id },
    fetchPolicy: 'network-only',
  });
  assert.equal(reread.users.nodes.find((user) => user.id === target.id).role, 'ORG_ADMIN');
});

test('a subscription through the graphql-ws link receives the change a mutation makes', async () => {
  const target = members[1];
  const events = [];
  const received = new Promise((resolve, reject) => {
    const subscription = client
      .subscribe({
        query: gql`
          subscription Changes($organisationId: ID) {
            userChanged(organisationId: $organisationId) { kind source user { id role organisation { id } } }
          }
        `,
        variables: { organisationId: organisation.id },
      })
      .subscribe({
        next: (result) => {
          if (result.error) return reject(result.error);
          events.push(result.data.userChanged);
          if (result.data.userChanged.user.id === target.id) {
            subscription.unsubscribe();
            resolve(result.data.userChanged);
          }
        },
        error: reject,
      });
  });
  // Wait until the server has taken the subscription before changing anything.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await client.mutate({
    mutation: gql`
      mutation Rename($id: ID!) { updateUser(id: $id, input: { firstName: "Renamed" }) { id firstName } }
    `,
    variables: { id: target.id },
  });
  const change = await received;
  assert.equal(change.kind, 'UPDATED');
  assert.equal(change.source, 'api');
  assert.equal(change.user.role, 'LECTURER');
  assert.equal(change.user.organisation.id, organisation.id);
});
