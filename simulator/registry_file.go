package simulator

import (
	"fmt"
	"io"
	"os"
	"time"
)

// WriteRegistry writes the scenario's fleet (Registry) to the file name, or
// to stdout when name is "-".
func (s *Scenario) WriteRegistry(name string, start time.Time, stdout io.Writer) error {
	if name == "-" {
		return s.Registry(stdout, start)
	}
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--registry: %w", err)
	}
	if err := s.Registry(f, start); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--registry: %w", err)
	}
	return nil
}
