package testenv_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// The store is a Registry, and Seed registers the crew as described:
// consent only where asked, each device its customer's.
var _ testenv.Registry = (*devices.Store)(nil)

func TestSeedParisCrew(t *testing.T) {
	st, err := devices.Open(t.Context(), testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	crew := testenv.ParisCrew()
	crew.Customers[1].Consent = false
	testenv.Seed(t, st, crew)

	for _, c := range crew.Customers {
		got, err := st.GetCustomer(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Phone != c.Phone || got.SMSConsent != c.Consent {
			t.Errorf("customer %s: phone %s, consent %v; want %s, %v", c.ID, got.Phone, got.SMSConsent, c.Phone, c.Consent)
		}
		d, err := st.GetDevice(t.Context(), c.Device.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.CustomerID != c.ID || d.Site.PostalCode != "75011" {
			t.Errorf("device %s: customer %q, site %+v", d.ID, d.CustomerID, d.Site)
		}
	}
	paula, err := st.GetTechnician(t.Context(), "tech-paris")
	if err != nil {
		t.Fatal(err)
	}
	if len(paula.Hours[time.Monday]) != 1 || len(paula.Hours[time.Sunday]) != 0 || paula.ServiceArea[0] != "75" {
		t.Errorf("tech-paris = %+v", paula)
	}
}
