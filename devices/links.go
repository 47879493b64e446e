package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The customer's links ({public_url}/c/{code}): the notifier makes a code
// for each message that carries one and the store keeps its SHA-256 (see
// migration 0012), written with the message (NewMessage.LinkHash).

// LinkTicket returns the ticket whose link code hashes to hash (hex
// SHA-256); ENotFound when no link has it.
func (s *Store) LinkTicket(ctx context.Context, hash string) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT ticket_id FROM customer_links WHERE code_hash = $1`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("link", "")
	} else if err != nil {
		return 0, fmt.Errorf("read customer link: %w", err)
	}
	return id, nil
}

// TicketConversation reads a ticket's conversation and the slots of its
// current offer, on the read pool; ENotFound when it has none.
func (s *Store) TicketConversation(ctx context.Context, ticket int64) (Conversation, []OfferSlot, error) {
	c, err := scanConversation(s.read.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM outreach
		WHERE ticket_id = $1`, ticket))
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil, notFound("conversation of ticket", ticket)
	} else if err != nil {
		return c, nil, fmt.Errorf("read conversation: %w", err)
	}
	slots, err := offerSlots(ctx, s.read, c.Ticket, c.Offer)
	return c, slots, err
}

// insertLink keeps a link's code hash for a ticket, in tx.
func (tx *Tx) insertLink(ctx context.Context, hash string, ticket int64, m NewMessage) error {
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_links (code_hash, ticket_id, created_at) VALUES ($1, $2, $3)`,
		hash, ticket, dbTime(m.At)); err != nil {
		return fmt.Errorf("insert customer link: %w", err)
	}
	return nil
}
