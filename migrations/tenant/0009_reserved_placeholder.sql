-- PLACEHOLDER on the scripts branch only: number 0009 is reserved for another branch.
-- Delete this file when merging (the real 0009 replaces it).
SELECT 1;
