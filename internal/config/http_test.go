package config

import (
	"strings"
	"testing"
	"time"
)

// The HTTP hardening keys come from the environment like every key, and
// bad ones are reported by name.
func TestHTTPHardeningKeys(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{
		"PROACTIVE_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.7",
		"PROACTIVE_HTTP_METRICS_TOKEN":   "scrape-me",
		"PROACTIVE_HTTP_READ_TIMEOUT":    "5s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTP.TrustedProxies) != 2 || cfg.HTTP.MetricsToken.Reveal() != "scrape-me" ||
		time.Duration(cfg.HTTP.ReadTimeout) != 5*time.Second || time.Duration(cfg.HTTP.WriteTimeout) != time.Minute {
		t.Errorf("http = %+v", cfg.HTTP)
	}
	_, err = Load("", envMap(map[string]string{"PROACTIVE_HTTP_TRUSTED_PROXIES": "10.0.0.0/33,proxy", "PROACTIVE_HTTP_IDLE_TIMEOUT": "0s"}))
	if err == nil || !strings.Contains(err.Error(), `"10.0.0.0/33"`) || !strings.Contains(err.Error(), `"proxy"`) ||
		!strings.Contains(err.Error(), "idle_timeout") {
		t.Errorf("bad http keys: %v", err)
	}
}
