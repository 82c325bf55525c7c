-- The columns an admin chose to see in the users list (comma-separated
-- keys; empty: the defaults), kept across visits and sign-ins.
ALTER TABLE admins ADD COLUMN user_columns TEXT NOT NULL DEFAULT '';
