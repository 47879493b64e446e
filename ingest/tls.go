package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
)

// TLSConfig returns the TLS settings for a broker URL: for mqtts:// (or
// ssl://, tls://) the server name and, with caFile, the CA certificates to
// trust; nil for plain TCP.
func TLSConfig(rawURL, caFile string) (*tls.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "mqtts" && u.Scheme != "ssl" && u.Scheme != "tls") {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls_ca_file %s: no PEM certificates in it", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}
