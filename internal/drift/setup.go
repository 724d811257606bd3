package drift

// Setup is a check wired from the settings (by internal/app).
type Setup struct {
	Deps    Deps
	Options Options
}

// Close releases what was opened for the check (nothing today: the store
// and the cloud connection belong to the process).
func (s *Setup) Close() error { return nil }
