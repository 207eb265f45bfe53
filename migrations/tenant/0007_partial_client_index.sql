-- Only changes pushed by offline clients carry (client_id, mutation_id); every other
-- row (API, CLI, imports) had a NULL entry in this index. Partial: lookups by a
-- client's mutation (`client_id = ? AND mutation_id = ?`) still use it, and each
-- server-side change writes one B-tree fewer (bulk import, issue 5).
DROP INDEX changes_client_mutation;
CREATE INDEX changes_client_mutation ON changes(client_id, mutation_id)
    WHERE client_id IS NOT NULL;
