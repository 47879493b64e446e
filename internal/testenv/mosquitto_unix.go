//go:build unix

package testenv

import (
	"syscall"
	"testing"
)

// Freeze stops the broker's process without closing its sockets, as a hung
// broker or a silent network: connections stay open and nothing answers.
func (m *MosquittoServer) Freeze(tb testing.TB) {
	tb.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("freeze mosquitto: %v", err)
	}
	tb.Cleanup(func() { _ = m.cmd.Process.Signal(syscall.SIGCONT) })
}

// Thaw lets a frozen broker run again.
func (m *MosquittoServer) Thaw(tb testing.TB) {
	tb.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		tb.Fatalf("thaw mosquitto: %v", err)
	}
}
