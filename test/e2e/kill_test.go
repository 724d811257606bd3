package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	bsquotas "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	netquotas "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/mail"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/sheet"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/internal/testenv/mailtest"
	"github.com/kaizen-onboard/kaizen/internal/testenv/setpasstest"
)

const (
	// envKillSeed, set to a number, replays the random draws of an earlier
	// run (the test logs its seed): PINs and kill delays, as shares of the
	// run times measured then.
	envKillSeed = "KAIZEN_KILLTEST_SEED"

	minKills         = 24 // processes killed, in all
	minKillRounds    = 4  // rounds with kills, after the calibration round
	maxKillsPerRound = 6
	killChildMax     = 5 * time.Minute

	// onboardLockTTL is onboard.Options.LockTTL's default, which addusers
	// does not override; outboxLease is mail.OutboxOptions.Lease's default,
	// which addusers does not override either.
	onboardLockTTL = time.Minute
	outboxLease    = 5 * time.Minute
)

// TestKilledRunsConverge: addusers runs killed (SIGKILL) at random points and
// run again converge — every approved row ends with exactly one user, one
// project, its roles and quotas, exactly one welcome mail per new user and
// one new-project mail per project, a working set-password link, and a
// "done" status.
//
// Each round gets fresh rows (a new CSV in the same domain, sharing the
// store and the mail server), is killed again and again, then run to
// completion and checked. Round 0 is not killed: it measures how long a
// full run takes, how long after its last row it ends (write-back and
// mail), and how long a run with nothing left to do takes.
//
// Every run continues where the one before was killed, so a kill's delay
// is drawn at random from [0, what this run should take]: the full run's
// time on a fresh sheet, shrinking towards the idle run's time as the work
// gets done. The shared dev servers' speed varies a lot with the other
// tests' load, so the full run's estimate is corrected by every run that
// ends by itself. A run that ends before its kill, or is killed after all
// the work, has converged the round: the round then ends (it ends anyway
// after maxKillsPerRound kills) and the next starts with fresh rows, until
// minKills processes were killed. The first kill of every third round
// instead comes a random few milliseconds after the run reports its last
// row, to land in the write-back and the mail delivery.
//
// Two leases outlive a SIGKILLed process, and the test waits neither out:
//
//   - the sheet's run lock (1 minute): a run started right after a kill
//     that held it exits 1 "another addusers run is working on this sheet".
//     The test expires it before each start, as if the operator had waited.
//   - the outbox claim (5 minutes) of messages the dead process was
//     sending: later runs leave them alone. After the final run the test
//     drains the outbox with a clock past the lease, as the reminders
//     daemon's outbox job would.
func TestKilledRunsConverge(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("starts about 30 addusers processes against the real Keystone")
	}
	e := newKillEnv(t)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envKillSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envKillSeed, s, err)
		}
	}
	t.Logf("kill delays seeded with %d (replay: %s=%d)", seed, envKillSeed, seed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x6b61697a656e))

	stats, rowStats := map[string]int{}, map[string]int{}
	rd := e.newRound(0, rng)
	full, tail := e.finish(rd)
	idle, _ := e.finish(rd) // and a run with nothing to do changes nothing (checked below)
	t.Logf("round 0: a full run of %d rows took %v (%v of it after the last row), a run with nothing left to do %v",
		len(rd.rows), full.Round(time.Millisecond), tail.Round(time.Millisecond), idle.Round(time.Millisecond))
	idle = min(idle, full)
	e.check(rd)
	if t.Failed() {
		t.FailNow()
	}

	kills := 0
	for r := 1; kills < minKills || r <= minKillRounds; r++ {
		rd := e.newRound(r, rng)
		prev := e.snapshot(rd)
		for k := range maxKillsPerRound {
			p := prev.progress()
			left := idle + time.Duration(float64(full-idle)*(1-p))
			afterRows := k == 0 && r%3 == 0
			from := "start"
			if afterRows {
				left, from = tail, "last row"
			}
			d := time.Duration(rng.Int64N(int64(left) + 1))
			ran, exited := e.killAfter(rd, d, afterRows)
			if exited {
				stats[stageFinished]++
				t.Logf("round %d run %d: ended by itself after %v, before its kill %v after its %s (of ~%v): the round converged",
					r, k+1, ran.Round(time.Millisecond), d.Round(time.Millisecond), from, left.Round(time.Millisecond))
				if !afterRows && p < 0.9 {
					// A full run would have taken about this long.
					obs := idle + time.Duration(float64(ran-idle)/(1-p))
					full = (full + max(obs, idle)) / 2
				}
				break
			}
			kills++
			snap := e.snapshot(rd)
			stage := classify(prev, snap)
			stats[stage]++
			for st, n := range snap.rowStates {
				if st != rowUntouched && st != rowDone {
					rowStats[st] += n
				}
			}
			t.Logf("round %d kill %d, %v after its %s (of ~%v): %s; %s", r, k+1, d.Round(time.Millisecond), from, left.Round(time.Millisecond), stage, snap)
			prev = snap
			if snap.converged() {
				break // killed after the work: more kills would only hit idle runs
			}
		}
		e.finish(rd)
		e.check(rd)
		if t.Failed() {
			t.FailNow() // later rounds would only repeat the failure
		}
	}

	t.Logf("where the %d kills landed (and the runs that ended before their kill):", kills)
	for _, stage := range stageOrder {
		if n := stats[stage]; n > 0 {
			t.Logf("  %2d  %s", n, stage)
		}
	}
	t.Logf("rows a kill left part-way (summed over the kills):")
	for _, st := range rowStateOrder {
		if n := rowStats[st]; n > 0 {
			t.Logf("  %2d  %s", n, st)
		}
	}
	e.logAudit()
	t.Logf("messages: %d delivered by the SMTP server, %d distinct Message-IDs; %d mailed by a drain past a dead process's lease",
		len(e.smtp.Messages()), len(e.msgIDs(e.smtp.Messages())), e.lateMail)
	t.Logf("run locks left behind by killed processes and expired by the test: %d", e.staleLocks)
}

// logAudit sums up the audit trail of all the runs: how often a re-run
// found an account a killed run had made without mailing its link.
func (e *killEnv) logAudit() {
	events, err := e.st.Events(e.t.Context(), time.Time{}, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	actions := map[string]int{}
	issued := map[string]bool{}
	for _, ev := range events {
		actions[ev.Action]++
		if ev.Action == "setpass.issue" {
			issued[ev.Target] = true
		}
	}
	e.t.Logf("audit: %d projects and %d accounts created; %d set-password links issued for %d accounts; "+
		"%d accounts found without their welcome got a fresh temporary password",
		actions["project.create"], actions["user.create"], actions["setpass.issue"], len(issued), actions["user.password.unused-reset"])
}

// killEnv is everything the rounds share.
type killEnv struct {
	t          *testing.T
	ks         *testenv.KeystoneEnv
	domainID   string
	domainName string
	dir        string
	cfgPath    string
	cfg        *config.Config
	st         store.Store // the store the children share (outbox, ledger, locks)
	smtp       *testenv.SMTPServer
	setpassURL string // base URL, with the trailing slash
	http       *http.Client
	quota      map[string]*gophercloud.ServiceClient // compute, block-storage, network
	memberRole string

	staleLocks int
	lateMail   int

	// childEnv is added to the children's environment.
	childEnv []string
}

func newKillEnv(t *testing.T) *killEnv { return newKillEnvIn(t, "") }

// newKillEnvIn is newKillEnv; with stateDir set, the settings name no
// store, and the store is the default one the children find through
// STATE_DIRECTORY=stateDir (see childEnv).
func newKillEnvIn(t *testing.T, stateDir string) *killEnv {
	ks := testenv.Keystone(t)
	for _, svc := range []string{"compute", "block-storage", "network"} {
		testenv.RequireQuotaService(t, svc)
	}
	ctx := t.Context()
	e := &killEnv{t: t, ks: ks, dir: t.TempDir(), http: &http.Client{Timeout: 30 * time.Second}}
	e.domainID, e.domainName = ks.Domain(t)

	q := ks.QuotaClients(t)
	e.quota = map[string]*gophercloud.ServiceClient{"compute": q.Compute, "block-storage": q.Volume, "network": q.Network}
	var err error
	// Deleting the domain (a cleanup registered earlier, so run later)
	// leaves the quotas Nova, Cinder and Neutron keep per project.
	t.Cleanup(e.resetQuotas)
	e.memberRole, err = cloud.RoleID(ctx, ks.Identity, "member")
	if err != nil {
		t.Fatal(err)
	}

	// Mail: the in-process server, STARTTLS and AUTH required.
	e.smtp = testenv.NewSMTP(t)

	// setpass: the real handler on its own store, against the real Keystone.
	e.setpassURL = setpasstest.New(t, ks, setpasstest.Options{
		Settings: setpass.Settings{RateLimit: 10000, RateBurst: 10000},
	}).URL

	storeURL := "sqlite://" + filepath.Join(e.dir, "kaizen.db")
	storeSection := fmt.Sprintf("\n[store]\nurl = %q\n", storeURL)
	getenv := childGetenv
	if stateDir != "" {
		storeSection = ""
		e.childEnv = []string{"STATE_DIRECTORY=" + stateDir}
		getenv = func(k string) string {
			if k == "STATE_DIRECTORY" {
				return stateDir
			}
			return childGetenv(k)
		}
	}
	e.cfgPath = filepath.Join(e.dir, "settings.toml")
	settings := fmt.Sprintf(`
[openstack]
domain = %q
# The dev servers are single-threaded and shared with the other tests: a
# slow request of another test (deleting a big domain) holds up Keystone,
# and so Nova, Cinder and Neutron, for up to a minute.
timeout = "3m"
`, e.domainName) + mailtest.Settings(t, e.smtp, e.setpassURL) + storeSection + `
[log]
level = "warn"
`
	if err := os.WriteFile(e.cfgPath, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.Load(e.cfgPath, config.Options{Getenv: getenv}); err != nil {
		t.Fatal(err)
	}
	if e.st, err = store.Open(ctx, e.cfg.Store.URL.Reveal(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	return e
}

// childGetenv reads the environment as a child sees it (see start): the
// test's, OS_* included, without KAIZEN_* settings (KAIZEN_STORE_URL and
// the like would override the settings file).
func childGetenv(k string) string {
	if strings.HasPrefix(k, "KAIZEN_") {
		return ""
	}
	return os.Getenv(k)
}

func (e *killEnv) resetQuotas() {
	// Generous: the shared dev servers can stall for a minute under the
	// other tests' load.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pages, err := projects.List(e.ks.Identity, projects.ListOpts{DomainID: e.domainID}).AllPages(ctx)
	if err != nil {
		e.t.Errorf("listing the projects to reset their quotas: %v", err)
		return
	}
	ps, _ := projects.ExtractProjects(pages)
	for _, p := range ps {
		var errs []error
		for _, err := range []error{ // a project killed before its quotas has none: 404
			computequotas.Delete(ctx, e.quota["compute"], p.ID).Err,
			bsquotas.Delete(ctx, e.quota["block-storage"], p.ID).Err,
			netquotas.Delete(ctx, e.quota["network"], p.ID).Err,
		} {
			if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			e.t.Errorf("resetting the quotas of project %s: %v", p.Name, err)
		}
	}
}

// killRow is one approved request of a round.
type killRow struct {
	timestamp  string
	email      string // as in the sheet: one per round is in mixed case
	first      string
	pin        string
	project    string
	existing   bool     // joins the project of an earlier row
	additional []string // as in the sheet
	preset     string   // "" takes quotas.default_preset
}

type killRound struct {
	n    int
	csv  string
	lock string // the store lock name of runs on csv
	rows []killRow
	// newUsers maps each account the round creates (lower-cased email) to
	// the PIN its link wants: the requester's own, or for an additional
	// user the requester's.
	newUsers map[string]string
	// projects maps each project the round creates to its row.
	projects map[string]killRow
	// members maps each project to the accounts given a role on it.
	members map[string][]string
	// late counts the messages lateDrain sent.
	late int
}

var csvHeader = []string{"Timestamp", "Email", "First Name", "Last Name", "Organization", "Role", "Phone",
	"Sponsor", "PIN", "Comment", "Existing Account", "Project Name", "Project Description", "Additional Users",
	"Existing Project", "Quota Preset", "Domain", "Approved", "Status", "Processed At", "User ID", "Project ID"}

// newRound writes the CSV of round n: eight approved new requests (one
// with an additional user, one in mixed case, one joining the project of
// the first) and one request that is not approved.
func (e *killEnv) newRound(n int, rng *mrand.Rand) *killRound {
	tag := fmt.Sprintf("r%d", n)
	rows := []killRow{
		{first: "Ada", email: "ada." + tag + "@example.org", project: "engine-" + tag},
		{first: "Grace", email: "grace." + tag + "@example.org", project: "compilers-" + tag,
			additional: []string{"Kathleen." + tag + "@Example.org"}},
		{first: "Alan", email: "alan." + tag + "@example.org", project: "morphogenesis-" + tag, preset: "medium"},
		{first: "Katherine", email: "Katherine.Johnson." + tag + "@Example.ORG", project: "trajectories-" + tag},
		{first: "Barbara", email: "barbara." + tag + "@example.org", project: "abstraction-" + tag, preset: "large"},
		{first: "Hedy", email: "hedy." + tag + "@example.org", project: "frequency-hopping-" + tag},
		{first: "Radia", email: "radia." + tag + "@example.org", project: "spanning-tree-" + tag},
		{first: "Edsger", email: "edsger." + tag + "@example.org", project: "engine-" + tag, existing: true},
	}
	rd := &killRound{n: n, rows: rows, newUsers: map[string]string{}, projects: map[string]killRow{}, members: map[string][]string{}}
	for i := range rows {
		rows[i].timestamp = fmt.Sprintf("11/%d/2026 09:%02d:%02d", 10+n, i, rng.IntN(60))
		rows[i].pin = fmt.Sprintf("%04d", rng.IntN(10000))
		q := rows[i]
		rd.newUsers[strings.ToLower(q.email)] = q.pin
		rd.members[q.project] = append(rd.members[q.project], strings.ToLower(q.email))
		for _, a := range q.additional {
			rd.newUsers[strings.ToLower(a)] = q.pin
			rd.members[q.project] = append(rd.members[q.project], strings.ToLower(a))
		}
		if !q.existing {
			rd.projects[q.project] = q
		}
	}

	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(csvHeader)
	yesNo := map[bool]string{true: "Yes", false: "No"}
	for _, q := range rows {
		w.Write([]string{q.timestamp, q.email, q.first, "Tester", "Kaizen Labs", "Researcher", "", "", q.pin, "",
			"No", q.project, "Round " + tag, strings.Join(q.additional, ", "), yesNo[q.existing], q.preset, "", "TRUE", "", "", "", ""})
	}
	// Not approved: must stay untouched.
	w.Write([]string{fmt.Sprintf("11/%d/2026 10:00:00", 10+n), "charles." + tag + "@example.org", "Charles", "Tester", "", "", "", "",
		"2468", "", "No", "difference-engine-" + tag, "", "", "No", "", "", "FALSE", "", "", "", ""})
	w.Flush()
	rd.csv = filepath.Join(e.dir, "requests-"+tag+".csv")
	if err := os.WriteFile(rd.csv, b.Bytes(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	rd.lock = "addusers:csv:" + rd.csv
	return rd
}

// start starts an addusers process on the round's sheet.
func (e *killEnv) start(rd *killRound, out io.Writer) (*exec.Cmd, chan error) {
	e.expireStaleLock(rd)
	cmd := e.command(rd)
	// Under -race a child would sleep a second before exiting
	// (atexit_sleep_ms), which would draw the kills there.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, "GORACE="+gorace)
	cmd.Env = append(cmd.Env, e.childEnv...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done
}

// command is the real addusers (built with -race when the test is)
// importing the round's sheet with four workers, in an environment without
// KAIZEN_* settings, GORACE or the variables drop, and killed after
// killChildMax.
func (e *killEnv) command(rd *killRound, drop ...string) *exec.Cmd {
	e.t.Helper()
	startBuilding()
	bin, err := addusersBinary()
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killChildMax)
	e.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, "--config", e.cfgPath, "import", "--sheet", rd.csv, "--workers", "4")
	cmd.Env = []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "KAIZEN_") && name != "GORACE" && !slices.Contains(drop, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// killAfter starts a run and SIGKILLs it after d, or with afterRows d
// after it reported its last row (then it is writing the sheet back or
// delivering mail). It reports whether the run had already exited by
// itself, which must then be a success: a run that fails on what an
// earlier killed run left is a convergence bug.
func (e *killEnv) killAfter(rd *killRound, d time.Duration, afterRows bool) (ran time.Duration, exited bool) {
	out := newChildOutput()
	begin := time.Now()
	cmd, done := e.start(rd, out)
	exitedOK := func(err error) (time.Duration, bool) {
		if err != nil {
			e.t.Fatalf("round %d: a run exited by itself before its kill: %v\n%s", rd.n, err, out)
		}
		return time.Since(begin), true
	}
	if afterRows {
		select {
		case <-out.rowsDone:
		case err := <-done: // no rows left to do
			return exitedOK(err)
		}
	}
	select {
	case err := <-done:
		return exitedOK(err)
	case <-time.After(d):
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		e.t.Fatal(err)
	}
	err := <-done
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() { // killed
		return time.Since(begin), false
	}
	return exitedOK(err) // it won the race with the kill
}

// finish runs addusers on the round to completion (exit 0 expected),
// then delivers what killed processes left claimed. It returns how long
// the run took, and how long it took after reporting its last row.
func (e *killEnv) finish(rd *killRound) (took, tail time.Duration) {
	out := newChildOutput()
	begin := time.Now()
	cmd, done := e.start(rd, out)
	var err error
	var rowsAt time.Time
	rowsDone, timeout := out.rowsDone, time.After(killChildMax+10*time.Second)
wait:
	for {
		select {
		case <-rowsDone:
			rowsAt, rowsDone = time.Now(), nil
		case err = <-done:
			break wait
		case <-timeout:
			cmd.Process.Kill()
			e.t.Fatalf("round %d: the final run did not end:\n%s", rd.n, out)
		}
	}
	end := time.Now()
	took = end.Sub(begin)
	if !rowsAt.IsZero() {
		tail = end.Sub(rowsAt)
	}
	if err != nil {
		e.t.Fatalf("round %d: the final run failed: %v\n%s", rd.n, err, out)
	}
	if e.staleLockHeld(rd) {
		e.t.Errorf("round %d: the final run exited 0 but left its lock", rd.n)
	}
	e.lateDrain(rd)
	return took, tail
}

// childOutput collects a child's output and notices the progress line of
// its last row ("progress: n/n rows", printed when stderr is no terminal).
// exec.Cmd calls Write from one goroutine at a time when Stdout and Stderr
// are the same writer.
type childOutput struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	scanned  int
	rowsDone chan struct{}
	seen     bool
}

func newChildOutput() *childOutput { return &childOutput{rowsDone: make(chan struct{})} }

func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for !o.seen {
		rest := o.buf.Bytes()[o.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		o.scanned += i + 1
		var done, total int
		if n, _ := fmt.Sscanf(string(rest[:i]), "progress: %d/%d rows", &done, &total); n == 2 && done == total {
			o.seen = true
			close(o.rowsDone)
		}
	}
	return len(p), nil
}

func (o *childOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// expireStaleLock frees the sheet's run lock if a killed process left it.
// addusers keeps it for onboard's LockTTL after its holder dies; taking it
// over with a clock past that TTL is what waiting it out would do.
func (e *killEnv) expireStaleLock(rd *killRound) {
	if !e.staleLockHeld(rd) {
		return
	}
	ctx := e.t.Context()
	const probe = "kill-test"
	if err := e.st.AcquireLock(ctx, rd.lock, probe, time.Now().Add(onboardLockTTL+time.Minute), time.Minute); err != nil {
		e.t.Fatalf("expiring the lock a killed run left: %v", err)
	}
	if err := e.st.ReleaseLock(ctx, rd.lock, probe); err != nil {
		e.t.Fatal(err)
	}
	e.staleLocks++
}

// staleLockHeld reports whether the sheet's run lock is held (no child is
// running when it is called, so by a killed one).
func (e *killEnv) staleLockHeld(rd *killRound) bool {
	ctx := e.t.Context()
	const probe = "kill-test-probe"
	err := e.st.AcquireLock(ctx, rd.lock, probe, time.Now(), time.Minute)
	if errors.Is(err, store.ErrConflict) {
		return true
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.ReleaseLock(ctx, rd.lock, probe); err != nil {
		e.t.Fatal(err)
	}
	return false
}

// lateDrain delivers the round's messages a killed process claimed and
// never recorded: their claim lasts the outbox lease, which later runs
// respect. Delivery is at-least-once: if the process died after the SMTP
// server accepted a message and before it recorded the delivery, this sends
// the same stored message, with the same Message-ID, a second time.
func (e *killEnv) lateDrain(rd *killRound) {
	ctx := e.t.Context()
	waiting := 0
	for _, m := range e.roundMessages(rd) {
		if m.Status != store.StatusSent {
			waiting++
		}
	}
	if waiting == 0 {
		return
	}
	tr, err := mail.NewTransport(e.cfg.Mail, time.Now, rand.Reader, mail.SMTPOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if c, ok := tr.(io.Closer); ok {
		defer c.Close()
	}
	keys, err := app.Keys(e.cfg, rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(outboxLease + time.Second) }
	rep, err := mail.NewOutbox(e.st, nil, nil, tr, mail.OutboxOptions{Now: later, Keys: keys}).Drain(ctx)
	if err != nil || rep.Retrying+rep.Abandoned > 0 {
		e.t.Fatalf("round %d: draining the outbox past the lease: %+v, %v", rd.n, rep, err)
	}
	e.t.Logf("round %d: %d message(s) were left claimed by a killed run; a drain past the lease sent %d", rd.n, waiting, rep.Sent)
	e.lateMail += rep.Sent
	rd.late += rep.Sent
}

// roundMessages are the outbox messages to the round's addresses.
func (e *killEnv) roundMessages(rd *killRound) []store.Message {
	all, err := e.st.Messages(e.t.Context(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Message
	for _, m := range all {
		for _, to := range m.To {
			if _, ok := rd.newUsers[strings.ToLower(to)]; ok {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// roundDeliveries are the SMTP server's messages to the round's addresses,
// in order of arrival.
func (e *killEnv) roundDeliveries(rd *killRound) []testenv.ReceivedMessage {
	var out []testenv.ReceivedMessage
	for _, m := range e.smtp.Messages() {
		for _, to := range m.To {
			if _, ok := rd.newUsers[strings.ToLower(to)]; ok {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// domainState lists the domain: projects by name, users by lower-cased name.
func (e *killEnv) domainState() (map[string][]projects.Project, map[string][]users.User) {
	ctx := e.t.Context()
	pages, err := projects.List(e.ks.Identity, projects.ListOpts{DomainID: e.domainID}).AllPages(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	ps, err := projects.ExtractProjects(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	byName := map[string][]projects.Project{}
	for _, p := range ps {
		byName[p.Name] = append(byName[p.Name], p)
	}
	pages, err = users.List(e.ks.Identity, users.ListOpts{DomainID: e.domainID}).AllPages(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	us, err := users.ExtractUsers(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	byUser := map[string][]users.User{}
	for _, u := range us {
		byUser[strings.ToLower(u.Name)] = append(byUser[strings.ToLower(u.Name)], u)
	}
	return byName, byUser
}

func (e *killEnv) readSheet(rd *killRound) *sheet.Table {
	tb, err := sheet.NewCSV(rd.csv).Read(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return tb
}

// snap is the round's progress after a kill.
type snap struct {
	lockHeld     bool // the run died holding the sheet's lock: inside onboard.Run
	projects     int  // of the round's new projects, those that exist
	users        int  // of the round's new accounts, those that exist
	queued       int  // outbox messages to the round's addresses
	sending      int  // of which claimed by the dead run, delivery unrecorded
	sent         int  // of which recorded as delivered
	delivered    int  // messages the SMTP server accepted (copies included)
	done         int  // rows whose Status is done
	partial      int  // rows begun (project or account exists) whose mail is not all queued
	rowStates    map[string]int
	rows         int // approved rows
	wantMail     int // messages the round should end with
	wantProjects int
	wantUsers    int
}

func (s snap) String() string {
	var rows []string
	for _, st := range rowStateOrder {
		if n := s.rowStates[st]; n > 0 {
			rows = append(rows, fmt.Sprintf("%d %s", n, st))
		}
	}
	return fmt.Sprintf("projects %d/%d, users %d/%d, mail queued %d/%d (sent %d, left claimed %d), SMTP deliveries %d, lock left held %v; rows: %s",
		s.projects, s.wantProjects, s.users, s.wantUsers, s.queued, s.wantMail, s.sent, s.sending, s.delivered, s.lockHeld, strings.Join(rows, ", "))
}

func (e *killEnv) snapshot(rd *killRound) snap {
	s := snap{lockHeld: e.staleLockHeld(rd), rows: len(rd.rows), wantMail: len(rd.newUsers) + len(rd.projects),
		wantProjects: len(rd.projects), wantUsers: len(rd.newUsers)}
	byProject, byUser := e.domainState()
	for name := range rd.projects {
		if len(byProject[name]) > 0 {
			s.projects++
		}
	}
	for addr := range rd.newUsers {
		if len(byUser[addr]) > 0 {
			s.users++
		}
	}
	keys := map[string]bool{}
	for _, m := range e.roundMessages(rd) {
		keys[m.Key] = true
		s.queued++
		switch m.Status {
		case store.StatusSent:
			s.sent++
		case store.StatusSending:
			s.sending++
		}
	}
	s.delivered = len(e.roundDeliveries(rd))
	tb := e.readSheet(rd)
	status := map[string]string{} // by email as in the sheet
	for _, r := range tb.Rows {
		status[tb.Get(r, "Email")] = tb.Get(r, "Status")
	}
	s.rowStates = map[string]int{}
	for _, q := range rd.rows {
		st := rowState(q, status[q.email], byProject, byUser, keys, rd.rows[0].project)
		s.rowStates[st]++
		switch st {
		case rowDone:
			s.done++
		case rowProject, rowAccount, rowWelcome:
			s.partial++
		}
	}
	return s
}

// The state a kill left a row in, in the order a run takes the steps.
const (
	rowUntouched = "untouched"
	rowProject   = "project made, an account not yet"
	rowAccount   = "accounts made, a welcome not queued (re-run resets the unused password)"
	rowWelcome   = "welcomes queued, the new-project mail not"
	rowQueued    = "all mail queued, the sheet not yet written back"
	rowDone      = "done"
)

var rowStateOrder = []string{rowUntouched, rowProject, rowAccount, rowWelcome, rowQueued, rowDone}

func rowState(q killRow, status string, byProject map[string][]projects.Project, byUser map[string][]users.User, keys map[string]bool, firstProject string) string {
	if status == signup.StatusDone {
		return rowDone
	}
	project := q.project
	if q.existing {
		project = firstProject
	}
	ps := byProject[project]
	accounts := append([]string{q.email}, q.additional...)
	made := 0
	welcomed := true
	for _, a := range accounts {
		if us := byUser[strings.ToLower(a)]; len(us) > 0 {
			made++
			welcomed = welcomed && keys["welcome:"+us[0].ID]
		}
	}
	switch {
	case made == 0 && (q.existing || len(ps) == 0):
		return rowUntouched
	case made < len(accounts):
		return rowProject
	case !welcomed:
		return rowAccount
	case !q.existing && !keys["new-project:"+ps[0].ID]:
		return rowWelcome
	default:
		return rowQueued
	}
}

// Where a kill landed, judged from what changed since the previous kill.
const (
	stageStartup  = "start-up: before the run took the sheet's lock (settings, store, Keystone auth)"
	stageRead     = "in the run before its first change (sheet, domain listing, role lookup)"
	stageMidRow   = "mid-row: some row half applied (project or account made, its mail not queued)"
	stageRowEdge  = "in the run between row steps (rows whole, write-back or other rows pending)"
	stageDrain    = "after the rows, while delivering mail (outbox drain)"
	stageAfter    = "after the work: delivered everything, or nothing was left to do"
	stageFinished = "(not a kill) the run ended before its kill, converging the round"
)

var stageOrder = []string{stageStartup, stageRead, stageMidRow, stageRowEdge, stageDrain, stageAfter, stageFinished}

// classify tells where the kill that took the round from prev to s landed.
// onboard.Run holds the lock while it changes anything and writes the
// sheet back before releasing it; mail is delivered after it returns.
func classify(prev, s snap) string {
	changed := s.projects != prev.projects || s.users != prev.users || s.queued != prev.queued || s.done != prev.done
	mailed := s.delivered != prev.delivered || s.sent != prev.sent || s.sending != prev.sending
	switch {
	case s.lockHeld && s.partial > 0:
		return stageMidRow
	case s.lockHeld && changed:
		return stageRowEdge
	case s.lockHeld:
		return stageRead
	case (changed || mailed) && s.sent < s.wantMail:
		return stageDrain
	case changed || mailed || prev.converged():
		return stageAfter
	default:
		return stageStartup
	}
}

func (s snap) converged() bool { return s.done == s.rows && s.sent == s.wantMail }

// progress is the share of the round's run time done, 0 to 1, as rows
// getting their mail queued, written back and mailed: creating the project
// and accounts is quick, the quotas (three single-threaded services) take
// most of a row's time, and a re-run sets them again.
func (s snap) progress() float64 {
	return float64(s.queued+s.sent+s.done) / float64(2*s.wantMail+s.rows)
}

// check asserts the round converged, through the cloud's own APIs, the
// sheet, the store and the mail server.
func (e *killEnv) check(rd *killRound) {
	t := e.t
	ctx := t.Context()
	byProject, byUser := e.domainState()

	userID := map[string]string{}
	for addr := range rd.newUsers {
		switch us := byUser[addr]; len(us) {
		case 1:
			userID[addr] = us[0].ID
		default:
			t.Errorf("round %d: %d accounts named %s (any case), want 1", rd.n, len(us), addr)
		}
	}
	if us := byUser["charles.r"+strconv.Itoa(rd.n)+"@example.org"]; len(us) > 0 {
		t.Errorf("round %d: the request that is not approved got an account", rd.n)
	}
	projectID := map[string]string{}
	for name, q := range rd.projects {
		ps := byProject[name]
		if len(ps) != 1 {
			t.Errorf("round %d: %d projects named %q, want 1", rd.n, len(ps), name)
			continue
		}
		p := ps[0]
		projectID[name] = p.ID
		if !slices.Contains(p.Tags, cloud.OwnerTag(strings.ToLower(q.email))) {
			t.Errorf("round %d: project %q lacks the owner tag of %s: %v", rd.n, name, q.email, p.Tags)
		}
		e.checkRoles(rd, name, p.ID, userID)
		e.checkQuotas(rd, name, p.ID, q.preset)
	}
	if ps := byProject["difference-engine-r"+strconv.Itoa(rd.n)]; len(ps) > 0 {
		t.Errorf("round %d: the request that is not approved got a project", rd.n)
	}

	// The sheet.
	tb := e.readSheet(rd)
	for _, r := range tb.Rows {
		email := tb.Get(r, "Email")
		i := slices.IndexFunc(rd.rows, func(q killRow) bool { return q.email == email })
		if i < 0 {
			if st := tb.Get(r, "Status"); st != "" || tb.Get(r, "PIN") != "2468" {
				t.Errorf("round %d: row %d (not approved) was written to: Status %q", rd.n, r.Number, st)
			}
			continue
		}
		q := rd.rows[i]
		if st := tb.Get(r, "Status"); st != signup.StatusDone {
			t.Errorf("round %d: row %d (%s) Status %q, want %q", rd.n, r.Number, email, st, signup.StatusDone)
		}
		if pin := tb.Get(r, "PIN"); pin != signup.PINRegistered {
			t.Errorf("round %d: row %d (%s) PIN cell not %q", rd.n, r.Number, email, signup.PINRegistered)
		}
		if got, want := tb.Get(r, "User ID"), userID[strings.ToLower(email)]; got != want {
			t.Errorf("round %d: row %d User ID %q, want %q", rd.n, r.Number, got, want)
		}
		want := projectID[q.project]
		if q.existing {
			want = projectID[rd.rows[0].project]
		}
		if got := tb.Get(r, "Project ID"); got != want {
			t.Errorf("round %d: row %d Project ID %q, want %q", rd.n, r.Number, got, want)
		}
	}

	// The outbox: exactly the expected keys, all delivered.
	want := map[string]string{} // key -> recipient
	for addr, id := range userID {
		want["welcome:"+id] = addr
	}
	for name, id := range projectID {
		want["new-project:"+id] = strings.ToLower(rd.projects[name].email)
	}
	queued := map[string]bool{} // keys in the outbox
	for _, m := range e.roundMessages(rd) {
		to, ok := want[m.Key]
		switch {
		case !ok:
			t.Errorf("round %d: unexpected message %q (%s) to %v", rd.n, m.Key, m.Kind, m.To)
		case len(m.To) != 1 || !strings.EqualFold(m.To[0], to):
			t.Errorf("round %d: message %q to %v, want %s", rd.n, m.Key, m.To, to)
		}
		if m.Status != store.StatusSent {
			t.Errorf("round %d: message %q is %s (%s), want sent", rd.n, m.Key, m.Status, m.LastError)
		}
		if len(m.Body) != 0 {
			t.Errorf("round %d: message %q keeps its body after delivery", rd.n, m.Key)
		}
		queued[m.Key] = true
		delete(want, m.Key)
	}
	for key, to := range want {
		t.Errorf("round %d: no %q message to %s was queued", rd.n, key, to)
	}

	// The mail server: each queued message delivered, counted by
	// Message-ID. Delivery is at-least-once: a run killed after the server
	// accepted a message and before the outbox recorded it leaves the
	// message claimed, and the drain after the lease (lateDrain) sends the
	// same stored message again, with the same Message-ID. So mail is
	// counted by distinct Message-ID, and copies are only allowed from
	// such a drain.
	// A delivered message keeps no body in the store, so a delivery is
	// matched to its outbox key by what it says: the project a new-project
	// mail names, the recipient of a welcome.
	keyOf := func(d testenv.ReceivedMessage) (string, bool) {
		subject, err := new(mime.WordDecoder).DecodeHeader(headerOf(t, d.Data).Get("Subject"))
		if err != nil || len(d.To) != 1 {
			return "", false
		}
		for name, id := range projectID {
			if strings.Contains(subject, "Your project "+name+" on ") {
				return "new-project:" + id, true
			}
		}
		if strings.Contains(subject, "set your password") {
			for addr, id := range userID {
				if strings.EqualFold(addr, d.To[0]) {
					return "welcome:" + id, true
				}
			}
		}
		return "", false
	}
	deliveries := e.roundDeliveries(rd)
	perKey := map[string]int{}          // deliveries of each outbox message
	ids := map[string]map[string]bool{} // kind and recipient -> distinct Message-IDs
	lastWelcome := map[string]testenv.ReceivedMessage{}
	for _, d := range deliveries {
		id := headerOf(t, d.Data).Get("Message-ID")
		key, ok := keyOf(d)
		if ok && !queued[key] {
			ok = false
		}
		if !ok {
			t.Errorf("round %d: the server got a message %s to %v that is not in the outbox", rd.n, id, d.To)
			continue
		}
		perKey[key]++
		kind, _, _ := strings.Cut(key, ":")
		for _, to := range d.To {
			k := kind + " " + strings.ToLower(to)
			if ids[k] == nil {
				ids[k] = map[string]bool{}
			}
			ids[k][id] = true
			if kind == "welcome" {
				lastWelcome[strings.ToLower(to)] = d
			}
		}
	}
	for key := range queued {
		if perKey[key] == 0 {
			t.Errorf("round %d: message %q was never delivered", rd.n, key)
		}
	}
	for addr := range rd.newUsers {
		if n := len(ids["welcome "+addr]); n != 1 {
			t.Errorf("round %d: %s got %d distinct welcome mails, want 1", rd.n, addr, n)
		}
	}
	for name, q := range rd.projects {
		if n := len(ids["new-project "+strings.ToLower(q.email)]); n != 1 {
			t.Errorf("round %d: %s got %d distinct new-project mails for %q, want 1", rd.n, q.email, n, name)
		}
	}
	copies := len(deliveries) - len(perKey)
	t.Logf("round %d: %d messages, %d SMTP deliveries (%d copies, same Message-ID; %d sent by a drain after a killed run's lease)",
		rd.n, len(perKey), len(deliveries), copies, rd.late)
	if copies > rd.late {
		t.Errorf("round %d: %d copies delivered, but only %d messages were left to a drain after the lease", rd.n, copies, rd.late)
	}

	// The link in each new user's last welcome mail is the live one: its
	// form opens, and setting a password through it works in Keystone.
	for addr := range rd.newUsers {
		d, ok := lastWelcome[addr]
		if !ok {
			t.Errorf("round %d: no welcome mail reached %s", rd.n, addr)
			continue
		}
		e.useLink(ctx, rd, addr, d.Data)
	}
}

// checkRoles: the member role, for exactly the project's members.
func (e *killEnv) checkRoles(rd *killRound, name, projectID string, userID map[string]string) {
	ctx := e.t.Context()
	pages, err := roles.ListAssignments(e.ks.Identity, roles.ListAssignmentsOpts{ScopeProjectID: projectID}).AllPages(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	as, err := roles.ExtractRoleAssignments(pages)
	if err != nil {
		e.t.Fatal(err)
	}
	var got, want []string
	for _, a := range as {
		if a.Role.ID != e.memberRole {
			e.t.Errorf("round %d: project %q: unexpected role %s for user %s", rd.n, name, a.Role.ID, a.User.ID)
			continue
		}
		got = append(got, a.User.ID)
	}
	for _, m := range rd.members[name] {
		want = append(want, userID[m])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Errorf("round %d: project %q: member role held by %v, want %v (%v)", rd.n, name, got, want, rd.members[name])
	}
}

// checkQuotas reads the project's quotas back from Nova, Cinder and
// Neutron and compares them with the preset.
func (e *killEnv) checkQuotas(rd *killRound, name, projectID, preset string) {
	ctx := e.t.Context()
	if preset == "" {
		preset = e.cfg.Quotas.DefaultPreset
	}
	want := e.cfg.Quotas.Presets[preset]
	if len(want) == 0 {
		e.t.Fatalf("no preset %q in the settings", preset)
	}
	got := map[string]int64{}
	collect := func(svc, field string, r gophercloud.Result) {
		var body map[string]map[string]any
		if err := r.ExtractInto(&body); err != nil {
			e.t.Fatalf("reading the %s quotas of %q: %v", svc, name, err)
		}
		for k, v := range body[field] {
			if f, ok := v.(float64); ok {
				got[k] = int64(f)
			}
		}
	}
	collect("compute", "quota_set", computequotas.Get(ctx, e.quota["compute"], projectID).Result)
	collect("block-storage", "quota_set", bsquotas.Get(ctx, e.quota["block-storage"], projectID).Result)
	collect("network", "quota", netquotas.Get(ctx, e.quota["network"], projectID).Result)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			e.t.Errorf("round %d: project %q quota %s = %d (present %v), want %d (preset %s)", rd.n, name, k, g, ok, v, preset)
		}
	}
}

var tokenLink = regexp.MustCompile(`\?token=[A-Za-z0-9_.~%-]+`)

// useLink opens the set-password link of a welcome mail and sets a
// password through it with the PIN the row gave.
func (e *killEnv) useLink(ctx context.Context, rd *killRound, addr string, raw []byte) {
	t := e.t
	text := testenv.TextPart(t, raw)
	i := strings.Index(text, e.setpassURL+"?token=")
	if i < 0 {
		t.Errorf("round %d: the welcome mail to %s has no link to %s:\n%s", rd.n, addr, e.setpassURL, text)
		return
	}
	link := e.setpassURL + tokenLink.FindString(text[i+len(e.setpassURL):])
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")

	resp, err := e.http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), token) {
		t.Errorf("round %d: the link in %s's last welcome mail: %s, want 200 and the form (the mailed link is not the live one)", rd.n, addr, resp.Status)
		return
	}

	password := "kill-test " + rand.Text()
	form := url.Values{"token": {token}, "pin": {rd.newUsers[addr]}, "password": {password}, "confirm": {password}}
	resp, err = e.http.PostForm(e.setpassURL, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("round %d: setting %s's password through the link: %s\n%s", rd.n, addr, resp.Status, body)
		return
	}
	if _, err := e.ks.AuthenticateUser(ctx, e.domainID, addr, password); err != nil {
		t.Errorf("round %d: %s cannot log in with the password set through the link: %v", rd.n, addr, err)
	}
}

func headerOf(t *testing.T, raw []byte) netmail.Header {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parsing a message: %v", err)
	}
	return msg.Header
}

// msgIDs is the set of Message-IDs among ms.
func (e *killEnv) msgIDs(ms []testenv.ReceivedMessage) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[headerOf(e.t, m.Data).Get("Message-ID")] = true
	}
	return out
}
