// What a browser frontend imports to talk to userhub: bundled by the CORS test with esbuild
// into one script, served from the frontend's own origin.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';

/** Apollo Client as a frontend wires it: HTTP for queries and mutations, graphql-ws for subscriptions. */
window.connectUserhub = ({ httpUrl, wsUrl, token }) => {
  const wsClient = createClient({
    url: wsUrl,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: httpUrl, headers: { authorization: `Bearer ${token}` } }),
  );
  return { client: new ApolloClient({ link, cache: new InMemoryCache() }), wsClient, gql };
};
