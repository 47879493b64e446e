-- Reserved: version 13 belongs to work merged from another branch.
-- This no-op keeps the versions contiguous on the surveys branch; delete
-- it when the real 0013 lands.
SELECT 1;
