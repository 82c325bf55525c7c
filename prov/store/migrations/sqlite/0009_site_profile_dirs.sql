-- The directories a site's phones keep user profiles, contact directories
-- and call lists in (the master file's USER_PROFILES_DIRECTORY,
-- CONTACTS_DIRECTORY and CALL_LISTS_DIRECTORY), as JSON; '' for none.
ALTER TABLE sites ADD COLUMN profile_dirs TEXT NOT NULL DEFAULT '';
