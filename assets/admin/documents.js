// Every GraphQL document the console sends, in one place, so that a test
// (conformance/tests/admin-documents.test.mjs) validates each against schema.graphql.

export const USER_FIELDS = `id clerkId email firstName lastName fullName role organisationId
  organisation { id name } isActive isSuspended lastSignInAt createdAt updatedAt`;
export const RUN_FIELDS = 'id status startedAt finishedAt seen created updated deactivated error triggeredBy';

export const ORGANISATION_CHOICES = `query Organisations($after: String) {
      organisations(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id name } } }`;

export const USERS = `query Users($first: Int!, $after: String, $filter: UsersFilter, $orderBy: UserOrderBy!) {
        users(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
          totalCount pageInfo { hasNextPage endCursor } nodes { ${USER_FIELDS} } } }`;

export const UPDATE_USER = `mutation UpdateUser($id: ID!, $input: UpdateUserInput!) {
        updateUser(id: $id, input: $input) { ${USER_FIELDS} } }`;

export const REMOVE_USER = `mutation Remove($id: ID!) { removeUser(id: $id) { ${USER_FIELDS} } }`;

export const INVITE_USERS = `mutation Invite($inputs: [InviteUserInput!]!) {
        inviteUsers(inputs: $inputs) { email invitation { id email } error { code message field } } }`;

export const PENDING_INVITATIONS = `query Pending { invitations(first: 50, filter: { status: PENDING }) {
        totalCount nodes { id clerkInvitationId email role organisation { name } createdAt } } }`;

export const REVOKE_INVITATION = 'mutation Revoke($id: ID!) { revokeInvitation(id: $id) { id status } }';

export const INVITATIONS = `query Invitations($after: String, $filter: InvitationsFilter) {
        invitations(first: 50, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor }
          nodes { id email role status organisation { name } createdAt } } }`;

export const CREATE_ORGANISATION = 'mutation Create($input: CreateOrganisationInput!) { createOrganisation(input: $input) { id name } }';

export const ORGANISATIONS = `query Organisations($filter: OrganisationsFilter) {
        organisations(first: 100, filter: $filter) { totalCount nodes { id name slug memberCount isArchived archivedAt createdAt } } }`;

export const ARCHIVE_ORGANISATION = 'mutation Archive($id: ID!) { archiveOrganisation(id: $id) { id isArchived } }';

export const RENAME_ORGANISATION = 'mutation Rename($id: ID!, $input: UpdateOrganisationInput!) { updateOrganisation(id: $id, input: $input) { id name } }';

export const SYNC_PROGRESS = `subscription Progress { syncProgress { total percent run { ${RUN_FIELDS} } } }`;

export const SYNC_USERS = `mutation Sync { syncUsers { ${RUN_FIELDS} } }`;

export const SYNC_RUN = `query Run($id: ID!) { syncRun(id: $id) { ${RUN_FIELDS} } }`;

export const SYNC_STATUS = `query Status { syncStatus { clerkCount databaseCount inSync
        missingInDatabase { count sample } missingInClerk { count sample } differing { count sample }
        unknownOrganisations { count sample } lastRun { ${RUN_FIELDS} } } }`;

export const AUDIT_LOG = `query Audit($after: String, $filter: AuditLogFilter) {
        auditLog(first: 50, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor }
          nodes { id occurredAt actor action subjectType subjectId before after source correlationId } } }`;

export const ME = `query Me { me { ${USER_FIELDS} } }`;

export const USER_CHANGED = `subscription Live { userChanged { kind source occurredAt previousOrganisationId user { ${USER_FIELDS} } } }`;

export const SUSPEND_USER = `mutation Suspend($id: ID!) { user: suspendUser(id: $id) { ${USER_FIELDS} } }`;

export const UNSUSPEND_USER = `mutation Unsuspend($id: ID!) { user: unsuspendUser(id: $id) { ${USER_FIELDS} } }`;

export const STATS_FIELDS = `organisationId members pendingInvitations signedInLast30Days neverSignedIn computedAt
        byRole { role active suspended removed }
        signInsByWeek(weeks: 8) { weekStart signIns people }
        workload { academicYear allocatedHours targetHours overAllocatedCount underAllocatedCount
          overAllocated { user { id fullName email } allocatedHours targetHours balanceHours } }`;

export const ORGANISATION_STATS = `query Stats($id: ID!) { organisationStats(id: $id) { ${STATS_FIELDS} } }`;

export const ORGANISATION_STATS_CHANGED = `subscription StatsLive($id: ID!) { organisationStatsChanged(id: $id) { ${STATS_FIELDS} } }`;

export const ORGANISATION_WORKLOAD = `query Workload($id: ID!, $year: String) {
        organisationWorkload(id: $id, academicYear: $year) { academicYear standardHours allocatedHours targetHours
          overAllocatedCount underAllocatedCount onTargetCount withoutTargetCount
          people { user { id fullName email } allocatedHours targetHours targetSource balanceHours balance } } }`;

export const MEMBERS = `query Members($org: ID!) { users(first: 100, orderBy: EMAIL_ASC, filter: { organisationId: $org, isActive: true }) {
        nodes { id fullName email role } } }`;

export const PERSON_WORKLOAD = `query Person($id: ID!, $year: String) { user(id: $id) { id fullName
        profile { staffId jobTitle department contractFte contractStart contractEnd workloadTargetHours accessUntil }
        workload(academicYear: $year) { allocatedHours targetHours balance
          activities { id term kind moduleCode name hours } } } }`;

export const ALLOCATE_ACTIVITY = `mutation Allocate($id: ID!, $input: AllocateActivityInput!) {
        allocateActivity(userId: $id, input: $input) { activity { id } workload { allocatedHours balance } } }`;

export const REMOVE_ACTIVITY = `mutation RemoveActivity($id: ID!) { removeActivity(id: $id) { activity { id } } }`;

export const UPDATE_PROFILE = `mutation Profile($id: ID!, $input: LecturerProfileInput!) {
        updateLecturerProfile(userId: $id, input: $input) { id profile { staffId jobTitle department contractFte contractStart contractEnd workloadTargetHours } } }`;

const JOB_FIELDS = `id kind status dryRun total done changed unchanged refused error finishedAt
  results { line email action outcome code message }`;

export const BULK_JOB_PROGRESS = `subscription Job($id: ID!) { bulkJobProgress(id: $id) { ${JOB_FIELDS} } }`;

export const BULK_JOB = `query Job($id: ID!) { bulkJob(id: $id) { ${JOB_FIELDS} } }`;
