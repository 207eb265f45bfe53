-- Placeholder so this branch's 0016 loads (the loader refuses gaps): number 0015 is
-- the sync-server branch's `0015_sync.sql`. At merge this file is dropped in favour
-- of that one; it changes nothing.
SELECT 1;
