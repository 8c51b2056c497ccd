-- An interpreter's state changes several times a call (offered, in call,
-- wrap-up, available), and each change also changed the partial index of
-- available interpreters by state_since. So no state change was a HOT
-- update: each one added an entry to the primary key and to that index, and
-- left the old ones for vacuum (in the join-to-offer benchmark, 461 of
-- 2,740 updates were HOT). With no index on the columns that change, and
-- room left on each page for the new version, every state change is HOT
-- (2,740 of 2,740): no index entry, and the old version pruned in place.
-- The index served the looks for free interpreters (the join's and the
-- round's), which read a few hundred rows as fast whole.
DROP INDEX interpreter_status_available;
ALTER TABLE interpreter_status SET (fillfactor = 50);
