-- The features on a user's phone keys (button programming: BLF, speed
-- dial, DND, call forward), as JSON; '' for none.
ALTER TABLE users ADD COLUMN feature_keys TEXT NOT NULL DEFAULT '';
