package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive"
)

// secretBytes is the entropy of a device secret: 256 bits, 43 characters
// of unpadded base64url.
const secretBytes = 32

// DefaultBcryptCost is the bcrypt cost meant for device secrets:
// bcrypt.MinCost, about 1 ms of one core per check (cost 10 takes about
// 85 ms). A device secret is 256 random bits, not a password a person
// chose: no work factor is needed to keep a leaked hash from being
// guessed, while a storm of 100,000 devices reconnecting after a restart
// (when the cache of checked secrets is empty) costs some 2 core-minutes at
// this cost against 2.4 core-hours at cost 10. Hashes made at another cost
// keep their own until the secret is rotated.
const DefaultBcryptCost = bcrypt.MinCost

// maxSecretLen bounds what CheckDeviceSecret hashes; bcrypt reads at most 72
// bytes and a generated secret has 43.
const maxSecretLen = 72

// SetDeviceSecret gives the device a new random MQTT secret, replacing any
// previous one, and returns it: it is shown this once and stored only as a
// bcrypt hash. ENotFound if the device is not registered.
func (s *Store) SetDeviceSecret(ctx context.Context, id proactive.DeviceID) (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("set device secret: random: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	// Hash before the transaction: on SQLite it holds the write lock.
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), s.cost)
	if err != nil {
		return "", fmt.Errorf("set device secret: hash: %w", err)
	}
	err = s.WithTx(ctx, func(tx *Tx) error {
		var one int
		err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, string(id)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("device", id)
		} else if err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO device_credentials (device_id, secret_hash, created_at)
			VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at`,
			string(id), string(hash), s.clock())
		tx.onCommit(func() { s.secrets.invalidate(id) })
		return err
	})
	if err != nil {
		return "", wrapOp("set device secret", err)
	}
	return secret, nil
}

// DeleteDeviceSecret removes the device's secret, so that it can no longer
// connect. ENotFound if it had none.
func (s *Store) DeleteDeviceSecret(ctx context.Context, id proactive.DeviceID) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM device_credentials WHERE device_id = $1`, string(id))
		tx.onCommit(func() { s.secrets.invalidate(id) })
		return rowsAffected(res, err, "secret of device", id)
	})
	return wrapOp("delete device secret", err)
}

// dummyHash returns the hash compared against when a device has no secret,
// made once per store at its cost, so that the answer takes as long as for
// a wrong secret.
func (s *Store) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("no secret for this device"), s.cost)
	})
	return s.dummy
}

// CheckDeviceSecret reports whether secret is the device's current secret.
// It is false, with a nil error, for a wrong secret, an unknown device and a
// device without a secret alike; the error is for a database failure only.
//
// The comparison is bcrypt's, in constant time. A secret that checked out is
// remembered (as its SHA-256, compared in constant time) for
// Options.SecretCacheTTL, so that a storm of reconnects costs one bcrypt per
// device; SetDeviceSecret and DeleteDeviceSecret forget it at once.
func (s *Store) CheckDeviceSecret(ctx context.Context, id proactive.DeviceID, secret string) (bool, error) {
	if secret == "" || len(secret) > maxSecretLen {
		return false, nil
	}
	sum := sha256.Sum256([]byte(secret))
	now := s.now()
	if cached, ok := s.secrets.get(id, now); ok {
		if subtle.ConstantTimeCompare(cached[:], sum[:]) == 1 {
			return true, nil
		}
	}
	gen := s.secrets.gen()
	var hash string
	err := s.read.QueryRowContext(ctx, `SELECT secret_hash FROM device_credentials WHERE device_id = $1`, string(id)).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(secret))
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check device secret: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(secret)) != nil {
		return false, nil
	}
	s.secrets.put(id, sum, gen, now)
	return true, nil
}
