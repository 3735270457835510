-- W1's directory: 100 organisations and 10,000 users, the same on every run (ids and times
-- derived from the row number), written into a database userhub's own migrations created.
BEGIN;
INSERT INTO organisations (id, name, slug, created_at, updated_at)
SELECT md5('bench-organisation-' || i)::uuid,
       'Organisation ' || lpad(i::text, 3, '0'),
       'organisation-' || lpad(i::text, 3, '0'),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute',
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 100) AS i;

INSERT INTO users (id, clerk_id, email, first_name, last_name, image_url, role, organisation_id,
                   is_active, banned, last_sign_in_at, clerk_updated_at, created_at, updated_at,
                   deactivated_at)
SELECT md5('bench-user-' || i)::uuid,
       'user_bench' || lpad(i::text, 6, '0'),
       'user' || lpad(i::text, 5, '0') || '@bench.userhub.test',
       'First' || i,
       'Last' || i,
       NULL,
       (ARRAY['member', 'lecturer', 'lecturer', 'org_admin'])[1 + i % 4],
       md5('bench-organisation-' || (1 + i % 100))::uuid,
       true,
       false,
       NULL,
       1767225600000 + i,
       timestamptz '2026-01-02 00:00:00+00' + i * interval '1 second',
       timestamptz '2026-01-02 00:00:00+00' + i * interval '1 second',
       NULL
FROM generate_series(1, 10000) AS i;
COMMIT;
ANALYZE organisations;
ANALYZE users;
