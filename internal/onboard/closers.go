package onboard

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/store"
)

// Closers holds what a setup wired from the settings opened (the store, the
// mail transport), for its Close. The quota-request and drift setups wire
// themselves the same way and use it too.
type Closers struct{ list []io.Closer }

// Add keeps c for Close; a nil c (a transport with nothing to close) is
// ignored.
func (cs *Closers) Add(c io.Closer) {
	if c != nil {
		cs.list = append(cs.list, c)
	}
}

// Close closes, last opened first, everything added, and forgets it.
func (cs *Closers) Close() error {
	var errs []error
	for i := len(cs.list) - 1; i >= 0; i-- {
		errs = append(errs, cs.list[i].Close())
	}
	cs.list = nil
	return errors.Join(errs...)
}

// OpenStore returns given when it is set (its owner closes it), else opens
// cfg.Store and keeps it for Close.
func (cs *Closers) OpenStore(ctx context.Context, cfg *config.Config, given store.Store, logger *slog.Logger) (store.Store, error) {
	if given != nil {
		return given, nil
	}
	st, err := store.Open(ctx, cfg.Store.URL.Reveal(), logger)
	if err != nil {
		return nil, err
	}
	cs.Add(st)
	return st, nil
}
