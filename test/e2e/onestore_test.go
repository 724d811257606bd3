package e2e

import (
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneStoreWhateverTheDirectory: with settings that name no store, two
// imports of one sheet started at once from two working directories (cron
// in one, an admin in another) find the one default store, so its lock
// keeps them apart: exactly one does the work, the other is refused or
// finds it done, and every user gets one welcome mail whose link works.
func TestOneStoreWhateverTheDirectory(t *testing.T) {
	state := t.TempDir()
	e := newKillEnvIn(t, state)
	if got, want := e.cfg.Store.URL.Reveal(), "sqlite://"+filepath.Join(state, "kaizen.db"); got != want {
		t.Fatalf("the default store is %s, want %s", got, want)
	}
	rd := e.newRound(0, mrand.New(mrand.NewPCG(3, 13)))

	dirs := []string{t.TempDir(), t.TempDir()}
	outs := make([]*childOutput, len(dirs))
	dones := make([]chan error, len(dirs))
	for i, dir := range dirs {
		outs[i] = newChildOutput()
		dones[i] = e.startIn(rd, dir, outs[i])
	}
	worked, refused, idle := 0, 0, 0
	for i := range dirs {
		err := <-dones[i]
		out := outs[i].String()
		switch {
		case err == nil && strings.Contains(out, "8 created"):
			worked++
		case err == nil && strings.Contains(out, "0 created, 0 updated, 8 unchanged"):
			idle++ // started after the other had finished
		case err != nil && strings.Contains(out, "another addusers run is working on this sheet"):
			refused++
		default:
			t.Errorf("run in %s: %v\n%s", dirs[i], err, out)
		}
		// Nothing of the store lands in the working directory.
		if _, err := os.Stat(filepath.Join(dirs[i], "var")); err == nil {
			t.Errorf("a store directory appeared in the working directory %s", dirs[i])
		}
	}
	t.Logf("runs: %d did the work, %d were refused by the lock, %d found it done", worked, refused, idle)
	if worked != 1 || refused+idle != 1 {
		t.Fatalf("%d runs did the work, want exactly 1", worked)
	}
	// One store, so one outbox: one welcome mail per user, the live link.
	e.check(rd)
}

// startIn starts an addusers import of the round's sheet in dir (without
// start's clearing of a killed run's lock, which would race the other run).
func (e *killEnv) startIn(rd *killRound, dir string, out *childOutput) chan error {
	cmd := e.command(rd, "STATE_DIRECTORY")
	cmd.Env = append(cmd.Env, e.childEnv...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}
