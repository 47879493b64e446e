//go:build !linux

package ingest_test

import "testing"

// setNoFile is only needed on Linux, where the test that uses it runs.
func setNoFile(tb testing.TB, n uint64) { tb.Skip("RLIMIT_NOFILE test runs on Linux") }
