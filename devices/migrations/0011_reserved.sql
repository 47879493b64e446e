-- Reserved: version 11 belongs to work merged from another branch (the
-- webhooks). This no-op keeps the versions contiguous on the selfservice
-- branch; delete it when the real 0011 lands.
SELECT 1;
