package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
)

func settings(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Store.URL = config.DSN{Secret: config.NewSecret("sqlite://"+filepath.Join(t.TempDir(), "state", "kaizen.db"), "test")}
	return &cfg
}

// TestCloudIsLazy: nothing connects until a dependency that needs the
// cloud is used; a failed connection is tried again at the next use; a
// good one is reused.
func TestCloudIsLazy(t *testing.T) {
	ctx := context.Background()
	calls := 0
	fail := true
	a := app.New(settings(t), nil, app.Options{Connect: func(context.Context, config.OpenStack) (*cloud.Clients, error) {
		calls++
		if fail {
			return nil, errors.New("keystone down")
		}
		return &cloud.Clients{}, nil
	}})
	defer a.Close()
	if _, err := a.Setpass(); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("building the setpass client connected %d time(s)", calls)
	}
	if _, err := a.Cloud(ctx); err == nil || !strings.Contains(err.Error(), "keystone down") {
		t.Fatalf("Cloud with Keystone down: %v", err)
	}
	fail = false
	c1, err := a.Cloud(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := a.Cloud(ctx)
	if c1 != c2 || calls != 2 {
		t.Errorf("calls = %d, same clients %v; want one retry, then reuse", calls, c1 == c2)
	}
}

// TestReadStoreCreatesNothing: without a store, ReadStore is nil and no
// file or directory appears; Store then creates and migrates it, and a
// later ReadStore is that store.
func TestReadStoreCreatesNothing(t *testing.T) {
	ctx := context.Background()
	cfg := settings(t)
	dir := filepath.Dir(strings.TrimPrefix(cfg.Store.URL.Reveal(), "sqlite://"))
	a := app.New(cfg, nil, app.Options{Now: func() time.Time { return time.Unix(0, 0) }})
	defer a.Close()
	st, err := a.ReadStore(ctx)
	if err != nil || st != nil {
		t.Fatalf("ReadStore without a store = %v, %v; want nil, nil", st, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadStore created %s (%v)", dir, err)
	}
	rw, err := a.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ro, err := a.ReadStore(ctx); err != nil || ro != rw {
		t.Errorf("ReadStore after Store = %v, %v; want the open store", ro, err)
	}
}

// TestKeysRequired: the outbox needs the [secrets] keys, and says which
// settings to set.
func TestKeysRequired(t *testing.T) {
	cfg := settings(t)
	a := app.New(cfg, nil, app.Options{})
	defer a.Close()
	if _, err := a.Outbox(nil, false); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "secret keys are required") {
		t.Fatalf("Outbox without keys: %v", err)
	}
}
