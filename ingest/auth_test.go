package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

func TestSecretAuth(t *testing.T) {
	down := errors.New("database down")
	auth := ingest.SecretAuth(func(_ context.Context, id proactive.DeviceID, secret string) (bool, error) {
		if id == "broken" {
			return false, down
		}
		return id == "pump-1" && secret == "s3cret", nil
	})
	for _, c := range []struct {
		user, password string
		want           error
	}{
		{"pump-1", "s3cret", nil},
		{"pump-1", "wrong", ingest.ErrBadCredentials},
		{"pump-2", "s3cret", ingest.ErrBadCredentials},
		{"broken", "s3cret", down},
	} {
		if err := auth(t.Context(), c.user, c.user, []byte(c.password)); !errors.Is(err, c.want) {
			t.Errorf("%s/%s: %v, want %v", c.user, c.password, err, c.want)
		}
	}
}
