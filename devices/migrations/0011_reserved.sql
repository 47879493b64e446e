-- Reserved: version 11 belongs to work merged from another branch.
-- This no-op keeps the versions contiguous on the surveys branch; delete
-- it when the real 0011 lands.
SELECT 1;
