package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Configuration takes the platform's one duration grammar: days and weeks
// too, in the file and in the environment.
func TestConfigDurations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("notify:\n  contact_cooldown: 2w\n  slot_horizon: 1w3d\n  offer_reminder: 1.5d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, envMap(map[string]string{"PROACTIVE_NOTIFY_OFFER_EXPIRY": "7d"}))
	if err != nil {
		t.Fatal(err)
	}
	const day = 24 * time.Hour
	for key, got := range map[string]Duration{
		"contact_cooldown": cfg.Notify.ContactCooldown, "slot_horizon": cfg.Notify.SlotHorizon,
		"offer_reminder": cfg.Notify.OfferReminder, "offer_expiry": cfg.Notify.OfferExpiry,
	} {
		want := map[string]time.Duration{"contact_cooldown": 14 * day, "slot_horizon": 10 * day,
			"offer_reminder": 36 * time.Hour, "offer_expiry": 7 * day}[key]
		if time.Duration(got) != want {
			t.Errorf("notify.%s = %v, want %v", key, time.Duration(got), want)
		}
	}

	if err := os.WriteFile(path, []byte("notify:\n  contact_cooldown: 7x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, fileErr := Load(path, envMap(nil))
	_, envErr := Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_OFFER_EXPIRY": "3 days"}))
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fileErr, `notify.contact_cooldown (` + path + ` line 2): "7x": unknown unit "x"`},
		{envErr, `notify.offer_expiry (PROACTIVE_NOTIFY_OFFER_EXPIRY): "3 days": unknown unit " days"`},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("error = %v, want it to contain %q", tt.err, tt.want)
		}
	}
}
