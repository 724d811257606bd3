package storetest

import (
	"fmt"
	"testing"

	"github.com/kaizen-onboard/kaizen/internal/store"
)

// testStoreID: the first ID offered is kept; later offers get it back.
func testStoreID(t *testing.T, s store.Store) {
	c := ctx(t)
	if _, err := s.StoreID(c, ""); err == nil {
		t.Error("StoreID with an empty new ID: no error")
	}
	id, err := s.StoreID(c, "first-id")
	if err != nil || id != "first-id" {
		t.Fatalf("first StoreID = %q, %v; want first-id", id, err)
	}
	if id, err := s.StoreID(c, "second-id"); err != nil || id != "first-id" {
		t.Errorf("second StoreID = %q, %v; want the first ID kept", id, err)
	}
}

// testRaceStoreID: concurrent first callers all get one ID.
func testRaceStoreID(t *testing.T, s store.Store) {
	c := ctx(t)
	ids := make([]string, racers)
	errs := race(racers, func(i int) error {
		var err error
		ids[i], err = s.StoreID(c, fmt.Sprintf("id-%d", i))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Errorf("racer %d got ID %q, racer 0 %q: want one ID", i, ids[i], ids[0])
		}
	}
}
