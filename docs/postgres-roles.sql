-- aiconsole's two PostgreSQL roles. Run as a superuser (or your platform's admin role), connected to
-- aiconsole's own database, e.g.
--   psql -d aiconsole -f docs/postgres-roles.sql
-- Safe to run again. On an empty database, run it before `aiconsole migrate` (then migrate as the service
-- role); on a database migrated earlier by another role, it hands every table over to the service role.
-- Then give both roles a password:
--   ALTER ROLE aiconsole_service PASSWORD '...';  ALTER ROLE aiconsole_console PASSWORD '...';
-- and point the processes at them (see docs/ARCHITECTURE.md, "Organizations are isolated twice"):
--   console (user sessions as the first, login as the second):
--             AICONSOLE_DATABASE_URL=postgresql://aiconsole_console:...@host/aiconsole
--             AICONSOLE_SERVICE_DATABASE_URL=postgresql://aiconsole_service:...@host/aiconsole
--   workers, `aiconsole migrate` and the other CLI commands:
--             AICONSOLE_DATABASE_URL=postgresql://aiconsole_service:...@host/aiconsole

-- Owns the tables and runs migrations; the policies let the owner through.
-- (ALTER ROLE ... BYPASSRLS works too, and skips even the per-row check.)
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aiconsole_service') THEN
    CREATE ROLE aiconsole_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

-- User sessions: bound by row-level security to the organization they name.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aiconsole_console') THEN
    CREATE ROLE aiconsole_console LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

-- Nothing may let the console act as the service role: a member would pass the policies.
DO $$
BEGIN
  IF pg_has_role('aiconsole_console', 'aiconsole_service', 'MEMBER') THEN
    RAISE EXCEPTION '% is a member of %: REVOKE % FROM %', 'aiconsole_console', 'aiconsole_service',
      'aiconsole_service', 'aiconsole_console';
  END IF;
END $$;

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO aiconsole_service, aiconsole_console', current_database());
END $$;

GRANT USAGE, CREATE ON SCHEMA public TO aiconsole_service;

GRANT USAGE ON SCHEMA public TO aiconsole_console;

-- Tables migrated earlier by another role become the service role's (sequences follow their tables).
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             AND c.relowner <> 'aiconsole_service'::regrole LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO aiconsole_service', t);
  END LOOP;
END $$;

-- Data access only: no TRUNCATE, no REFERENCES, no TRIGGER, and no ownership (so no ALTER TABLE).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO aiconsole_console;

GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO aiconsole_console;

-- The same for every table and sequence later migrations create.
ALTER DEFAULT PRIVILEGES FOR ROLE aiconsole_service IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO aiconsole_console;

ALTER DEFAULT PRIVILEGES FOR ROLE aiconsole_service IN SCHEMA public
  GRANT USAGE ON SEQUENCES TO aiconsole_console;
