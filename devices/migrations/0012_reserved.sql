-- Reserved: version 12 belongs to work merged from another branch.
-- This no-op keeps the versions contiguous on the surveys branch; delete
-- it when the real 0012 lands.
SELECT 1;
