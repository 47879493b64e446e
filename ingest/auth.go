package ingest

import (
	"context"

	"github.com/proactivehq/proactive"
)

// SecretAuth returns an AuthenticateFunc over a registry's check of a
// device's secret (true when secret is the device's): the username is the
// device id and the password its secret; a false check is
// ErrBadCredentials.
func SecretAuth(check func(ctx context.Context, id proactive.DeviceID, secret string) (bool, error)) AuthenticateFunc {
	return func(ctx context.Context, _, username string, password []byte) error {
		ok, err := check(ctx, proactive.DeviceID(username), string(password))
		if err != nil {
			return err
		}
		if !ok {
			return ErrBadCredentials
		}
		return nil
	}
}
