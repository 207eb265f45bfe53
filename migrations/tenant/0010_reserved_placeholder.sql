-- PLACEHOLDER on the scripts branch only: number 0010 is reserved for another branch.
-- Delete this file when merging (the real 0010 replaces it).
SELECT 1;
