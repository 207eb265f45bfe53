-- PLACEHOLDER on the scripts branch only: number 0012 is reserved for another branch.
-- Delete this file when merging (the real 0012 replaces it).
SELECT 1;
