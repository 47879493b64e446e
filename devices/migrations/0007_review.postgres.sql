-- The ticket status review (a dispatcher approves or dismisses a ticket
-- before any customer is texted). PostgreSQL dialect; the SQLite file of the
-- same version gives the same table.

ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN
	('open', 'review', 'offered', 'scheduled', 'visited', 'closed', 'declined', 'expired', 'cancelled'));
