package mail

import "io"

// Delivery is a run's mail, as its wiring built it: the outbox (nil in a
// dry run), whether it delivers now, and the transport to close after.
type Delivery struct {
	Outbox *Outbox
	// Deliver is false when the outbox was built without a transport
	// (another process delivers).
	Deliver bool
	// Closer, when set, closes the transport built for this run alone.
	Closer io.Closer
}

// Close closes the run's transport.
func (d *Delivery) Close() error {
	if d.Closer == nil {
		return nil
	}
	return d.Closer.Close()
}
