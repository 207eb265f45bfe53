-- PLACEHOLDER on the scripts branch only: number 0011 is reserved for another branch.
-- Delete this file when merging (the real 0011 replaces it).
SELECT 1;
