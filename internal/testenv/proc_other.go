//go:build !linux

package testenv

import "os/exec"

// setProcAttr does nothing where there is no parent-death signal: an influxd
// outliving a crashed test binary must be stopped by hand.
func setProcAttr(*exec.Cmd) {}
