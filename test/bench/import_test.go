//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaizen-onboard/kaizen/internal/app"
	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/onboard"
	"github.com/kaizen-onboard/kaizen/internal/setpass"
	"github.com/kaizen-onboard/kaizen/internal/signup"
	"github.com/kaizen-onboard/kaizen/internal/store"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
	"github.com/kaizen-onboard/kaizen/templates"
)

// Sizes and goals of BenchmarkImport (the goals are reported, not enforced).
const (
	benchImportRows = 500    // new requests onboarded by Kaizen
	benchCLIRows    = 50     // the same work by scripts/bench-openstack-cli (~7 s a row)
	benchBigRows    = 10_000 // the sheet whose peak memory is measured
	// KAIZEN_BENCH_CLI_ROWS overrides benchCLIRows (e.g. 10 for a quicker
	// run; the CLI's time per row does not depend on the count).
	benchCLIRowsEnv = "KAIZEN_BENCH_CLI_ROWS"
	// The CLI rows run in chunks, each retried up to benchCLIAttempts times
	// (see benchRunCLI).
	benchCLIChunk    = 10
	benchCLIAttempts = 4

	benchGoalReadsPerRow = 1.0   // addusers' reads, all services, per row on average
	benchGoalFloorRatio  = 1.2   // wall time / busiest server's busy time
	benchGoalCLISpeedup  = 20.0  // CLI time per row / Kaizen time per row
	benchGoalRerunPct    = 5.0   // re-run time, % of the first run
	benchGoalPeakMB      = 150.0 // peak RSS of addusers on the 10,000-row sheet

	benchSetpassUA = "kaizen-setpass" // prepended to setpass's User-Agent
)

// benchServices are the services the counting proxy fronts, in print order.
var benchServices = []string{"identity", "compute", "block-storage", "network"}

// benchNeededWrites are the writes a new-request row needs with the default
// roles (member) and preset: project, user and one role assignment in
// Keystone, one quota write per quota service.
var benchNeededWrites = map[string]int{"identity": 3, "compute": 1, "block-storage": 1, "network": 1}

// BenchmarkImport measures an import against the local Keystone and the
// Nova, Cinder and Neutron quota APIs, all behind testenv.CountingCloud,
// and prints one table with:
//
//  1. 500 new requests (new user and new project each, default preset, all
//     three quota services on quota-sets) through app.Import and
//     onboard.Run, as `addusers import` runs them: cloud clients
//     authenticated through the proxy, a CSV sheet, a real mail.Outbox on
//     SQLite with the Maildir transport (mail is queued, not delivered) and
//     a real setpass handler on an httptest server. setpass has its own
//     SQLite store; its Keystone client also goes through the proxy, with
//     User-Agent "kaizen-setpass ...", and a RoundTripper of its own counts
//     its requests apart. Reported: API requests per row by service, reads
//     and writes apart; wall time; and wall time over the busiest server's
//     busy time.
//  2. The same work for 50 rows by scripts/bench-openstack-cli, through the
//     same proxy, and how many times faster Kaizen is per row.
//  3. A re-run on the 500 processed rows: writes per service (goal: none)
//     and its time as a share of the first run's.
//  4. Peak RSS of the addusers binary on a 10,000-row sheet: `plan` of
//     10,000 new requests (it reads, parses and plans every row against
//     the real Keystone; it does not create 10,000 projects, which on the
//     single-threaded dev cloud would take about 15 minutes), and `import`
//     of the same 10,000 rows all done (the real re-run of a big sheet).
//
// Each b.Loop iteration does all of it once, in domains of its own (removed
// at the end; the quota services keep their rows). One iteration takes
// about 10 minutes on a 2-CPU machine, 6 to 9 of them the CLI's (set
// KAIZEN_BENCH_CLI_ROWS to run fewer CLI rows), so give go test a -timeout
// above its default 10m; the default -benchtime (1s) does exactly one
// iteration, as -benchtime=1x does.
//
// ns/op, B/op and allocs/op are replaced by Kaizen's wall time and the
// process's allocations per row of the 500-row run (the process holds
// addusers, setpass and the proxies together).
func BenchmarkImport(b *testing.B) {
	for _, svc := range []string{cloud.ServiceCompute, cloud.ServiceBlockStorage, cloud.ServiceNetwork} {
		testenv.RequireQuotaService(b, svc)
	}
	ks := testenv.Keystone(b)
	cc := testenv.NewCountingCloud(b)
	if _, err := exec.LookPath("openstack"); err != nil {
		b.Skip("the openstack CLI is not installed (python3-openstackclient); scripts/bench-openstack-cli needs it")
	}
	root := benchRepoRoot(b)
	addusers := benchBuildAddusers(b)
	cliRows := benchCLIRows
	if s := os.Getenv(benchCLIRowsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", benchCLIRowsEnv, s)
		}
		cliRows = n
	}

	var res benchImportResult
	for b.Loop() {
		res = benchImportOnce(b, ks, cc, root, addusers, cliRows)
		// Printed, not logged: a benchmark's log is cut to 10 lines.
		fmt.Print(res.table())
	}

	k := res.kaizen
	perRow := float64(k.rows)
	b.ReportMetric(float64(k.wall.Nanoseconds())/perRow, "ns/op")
	b.ReportMetric(float64(k.bytes)/perRow, "B/op")
	b.ReportMetric(float64(k.mallocs)/perRow, "allocs/op")
	b.ReportMetric(perRow/k.wall.Seconds(), "rows/s")
	b.ReportMetric(float64(k.reads())/perRow, "reads/row")
	b.ReportMetric(float64(k.writes())/perRow, "writes/row")
	b.ReportMetric(float64(k.setpass.reads)/perRow, "setpass-ks-reads/row")
	b.ReportMetric(k.floorRatio(), "floor-ratio")
	b.ReportMetric(res.cliSpeedup(), "cli-speedup")
	b.ReportMetric(res.rerunPct(), "rerun-%")
	b.ReportMetric(float64(res.rerun.writes()), "rerun-writes")
	b.ReportMetric(res.plan.peakMB(), "peak-MB")
	b.ReportMetric(res.doneImport.peakMB(), "rerun-peak-MB")
}

// benchImportResult is one iteration of BenchmarkImport.
type benchImportResult struct {
	kaizen, rerun benchRun
	cli           benchCLI
	baseline      benchProc // addusers --version: the process alone
	plan          benchProc // plan, 10,000 new rows
	doneImport    benchProc // import, 10,000 done rows
	bigRows       int
}

// benchRun is one onboard.Run through the proxy.
type benchRun struct {
	rows    int
	wall    time.Duration
	counts  map[string]testenv.ServiceCount // by the proxy: addusers and setpass
	setpass benchClientCount                // setpass's share of identity
	outcome map[string]int
	mail    int
	bytes   uint64
	mallocs uint64
	cpu     benchCPU // CPU time each server process and this one used
	// others are test binaries of other packages or runs seen during the
	// run: the dev servers and CPUs were shared with them.
	others []string
}

// own is what addusers itself asked service: the proxy's count less
// setpass's requests for identity.
func (r benchRun) own(service string) (reads, writes, auth int) {
	c := r.counts[service]
	reads, writes, auth = c.Reads, c.Writes, c.Auth
	if service == "identity" {
		reads -= r.setpass.reads
		writes -= r.setpass.writes
		auth -= r.setpass.auth
	}
	return reads, writes, auth
}

func (r benchRun) reads() (n int) {
	for _, s := range benchServices {
		rd, _, _ := r.own(s)
		n += rd
	}
	return n
}

func (r benchRun) writes() (n int) {
	for _, s := range benchServices {
		_, w, _ := r.own(s)
		n += w
	}
	return n
}

// busiest is the service with the longest BusyTime.
func (r benchRun) busiest() (string, time.Duration) {
	var name string
	var most time.Duration
	for _, s := range benchServices {
		if t := r.counts[s].BusyTime; t > most {
			name, most = s, t
		}
	}
	return name, most
}

// floorRatio is the wall time over the busiest server's BusyTime. The dev
// servers are single-threaded, so the busiest one's busy time is the
// shortest the run could take with that server as the bottleneck; 1.0 means
// it never sat idle while the run went on. BusyTime, the union of the
// intervals with a request in flight, is the right measure: ServiceTime sums
// each request's time, and requests queued at a single-threaded server are
// each charged their wait in its queue, so with 8 workers it can exceed the
// wall time several times over and would make any run look perfect.
//
// On the dev cloud the servers are coupled: Nova checks the project of every
// quota PUT with GET /v3/projects/{id} on Keystone (not through the proxy),
// so while Keystone has a queue, single-threaded Nova sits waiting in it and
// its busy time approaches Keystone's. The table shows each server's CPU
// time beside its busy time to tell the two apart.
func (r benchRun) floorRatio() float64 {
	_, busy := r.busiest()
	if busy <= 0 {
		return 0
	}
	return r.wall.Seconds() / busy.Seconds()
}

// benchCLI is scripts/bench-openstack-cli's run.
type benchCLI struct {
	rows     int
	seconds  float64
	perRowMS float64
	counts   map[string]testenv.ServiceCount
	cpu      benchCPU // "self" is the script and the CLI processes it ran
	retries  int      // chunks run again (see benchRunCLI)
}

// benchProc is an addusers subprocess.
type benchProc struct {
	args   string
	wall   time.Duration
	maxRSS int64 // KiB
	counts map[string]testenv.ServiceCount
}

func (p benchProc) peakMB() float64 { return float64(p.maxRSS) / 1024 }

func (r benchImportResult) cliSpeedup() float64 {
	k := r.kaizen.wall.Seconds() * 1000 / float64(r.kaizen.rows)
	if k <= 0 {
		return 0
	}
	return r.cli.perRowMS / k
}

func (r benchImportResult) rerunPct() float64 {
	return 100 * r.rerun.wall.Seconds() / r.kaizen.wall.Seconds()
}

// benchImportOnce does the whole measurement once.
func benchImportOnce(b *testing.B, ks *testenv.KeystoneEnv, cc *testenv.CountingCloud, root, addusers string, cliRows int) benchImportResult {
	ctx := b.Context()
	dir := b.TempDir()
	_, domain := ks.Domain(b)
	var res benchImportResult

	// setpass is served first: the settings name its URL.
	spHandler := &benchHandler{}
	spServer := httptest.NewServer(spHandler)
	b.Cleanup(spServer.Close)

	// Settings as a deployment would have them; the OpenStack credentials
	// come from the OS_* environment with OS_AUTH_URL at the proxy, so that
	// the catalog, and every client built from it, points at the proxies.
	settings := benchWriteSettings(b, dir, "kaizen", spServer.URL+"/")
	cfg, err := config.Load(settings, config.Options{Getenv: func(k string) string {
		if k == "OS_AUTH_URL" {
			return cc.AuthURL
		}
		return os.Getenv(k)
	}})
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)) // formatted, as in service; not written

	// setpass: the real handler on its own store, its Keystone client
	// through the proxy and counted on the way.
	spCount := &benchClientCounter{prefix: benchSetpassUA}
	spHandler.set(benchSetpass(b, cfg, dir, spCount, logger))

	sheetPath := filepath.Join(dir, "requests.csv")
	benchWriteSheet(b, sheetPath, benchImportRows, domain, "bench", false)

	// run is `addusers import --sheet requests.csv` without the mail
	// delivery at its end: app.Import (open the sheet and the store,
	// connect, resolve the quota services, build the setpass client and the
	// outbox with the Maildir transport) and onboard.Run. Timed and counted
	// from the first request (authentication) to the last row's write-back.
	run := func() benchRun {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cpu0 := benchReadCPU(root, syscall.RUSAGE_SELF)
		others := benchOtherTests()
		cc.Reset()
		spCount.reset()
		start := time.Now()

		a := app.New(cfg, logger, app.Options{})
		defer a.Close()
		setup, err := a.Import(ctx, app.ImportOptions{CSVPath: sheetPath})
		if err != nil {
			b.Fatal(err)
		}
		defer setup.Close()
		sum, err := onboard.Run(ctx, setup.Deps, setup.Options)
		wall := time.Since(start)
		counts := cc.Counts()
		cpu := benchReadCPU(root, syscall.RUSAGE_SELF).since(cpu0)
		for _, o := range benchOtherTests() {
			if !slices.Contains(others, o) {
				others = append(others, o)
			}
		}
		runtime.ReadMemStats(&after)
		if err != nil {
			for _, r := range sum.Rows {
				if r.Error != "" || r.WriteBack != "" {
					b.Fatalf("onboard.Run: %v; first failure: row %d: %s %s", err, r.Row, r.Error, r.WriteBack)
				}
			}
			b.Fatalf("onboard.Run: %v", err)
		}
		return benchRun{rows: len(sum.Rows), wall: wall, counts: counts, setpass: spCount.snapshot(),
			outcome: sum.Counts, mail: sum.Mail, cpu: cpu, others: others,
			bytes: after.TotalAlloc - before.TotalAlloc, mallocs: after.Mallocs - before.Mallocs}
	}

	// 1. 500 new requests.
	res.kaizen = run()
	if got := res.kaizen.outcome[string(onboard.Created)]; got != benchImportRows || res.kaizen.rows != benchImportRows {
		b.Fatalf("first run: %d of %d rows created (%v)", got, res.kaizen.rows, res.kaizen.outcome)
	}
	if want := 2 * benchImportRows; res.kaizen.mail != want { // welcome + new-project
		b.Fatalf("first run queued %d mails, want %d", res.kaizen.mail, want)
	}
	if res.kaizen.setpass.foreign > 0 {
		b.Fatalf("setpass's Keystone client sent %d requests without the %q User-Agent", res.kaizen.setpass.foreign, benchSetpassUA)
	}

	// 3. The re-run: every row is done now.
	res.rerun = run()
	if got := res.rerun.outcome[string(onboard.Unchanged)]; got != benchImportRows {
		b.Fatalf("re-run: %d of %d rows unchanged (%v)", got, res.rerun.rows, res.rerun.outcome)
	}

	// 2. The openstack CLI, through the same proxy, in a domain of its own.
	res.cli = benchRunCLI(b, ks, cc, root, cliRows)

	// 4. Peak memory of the binary on a 10,000-row sheet, in a domain of
	// its own that exists and is empty (plan lists it: the realistic case).
	// Its own store and settings, so that the done-row import has nothing
	// queued to deliver.
	res.bigRows = benchBigRows
	_, bigDomain := ks.Domain(b)
	bigSettings := benchWriteSettings(b, dir, "big", "http://127.0.0.1:9/") // no link is issued
	bigNew := filepath.Join(dir, "big-new.csv")
	benchWriteSheet(b, bigNew, benchBigRows, bigDomain, "big", false)
	bigDone := filepath.Join(dir, "big-done.csv")
	benchWriteSheet(b, bigDone, benchBigRows, bigDomain, "big", true)
	res.baseline = benchProcess(b, cc, addusers, dir, "--version")
	res.plan = benchProcess(b, cc, addusers, dir, "--config", bigSettings, "plan", "--sheet", bigNew, "--output", "json")
	res.doneImport = benchProcess(b, cc, addusers, dir, "--config", bigSettings, "import", "--sheet", bigDone, "--output", "json")
	return res
}

// benchSetpass builds the real setpass handler. Its
// Keystone client is setpass's own (cloud.Connect, as cmd/setpass does),
// through the proxy, with "kaizen-setpass" prepended to its User-Agent and
// its requests counted by count.
func benchSetpass(b *testing.B, cfg *config.Config, dir string, count *benchClientCounter, logger *slog.Logger) http.Handler {
	ctx := b.Context()
	clients, err := cloud.Connect(ctx, cfg.OpenStack)
	if err != nil {
		b.Fatal(err)
	}
	clients.Provider.UserAgent.Prepend(benchSetpassUA)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	clients.Provider.HTTPClient.Transport = count.wrap(base)

	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "setpass.db"), logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	pages, err := setpass.LoadPages(templates.FS, "", setpass.Branding{CloudName: cfg.Mail.CloudName, Support: cfg.Mail.Support})
	if err != nil {
		b.Fatal(err)
	}
	sp := cfg.Setpass
	h, err := setpass.NewHandler(setpass.Deps{
		Store:    st,
		Keystone: setpass.NewKeystone(cloud.NewKeystone(clients.Identity), cfg.OpenStack.AdminProject, cfg.OpenStack.AdminProjectDomain),
		Pages:    pages,
		Registry: prometheus.NewRegistry(),
		Logger:   logger,
		Now:      time.Now,
		Random:   rand.Reader,
		Settings: setpass.Settings{
			SecretKey: []byte(sp.SecretKey.Reveal()), BaseURL: sp.URL, TokenTTL: sp.TokenTTL.D,
			MaxAttempts: sp.MaxAttempts, MinPasswordLength: sp.MinPasswordLength,
			RateLimit: sp.RateLimit, RateBurst: sp.RateBurst,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchHandler serves the handler set once it is built.
type benchHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *benchHandler) set(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h = h
}

func (s *benchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "setpass is not ready", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// benchWriteSettings writes settings for a run named name under dir: its
// own store and maildir, everything else the defaults (quota-sets for all
// three services, preset small, 8 workers, role member).
func benchWriteSettings(b *testing.B, dir, name, setpassURL string) string {
	b.Helper()
	path := filepath.Join(dir, name+".toml")
	content := fmt.Sprintf(`[setpass]
url = %q
secret_key = "bench-secret-key-0123456789abcdef0123456789"

[mail]
transport = "maildir"
maildir = %q

[store]
url = %q

[log]
level = "warn"
`, setpassURL, filepath.Join(dir, name+"-mail"), "sqlite://"+filepath.Join(dir, name+".db"))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchWriteSheet writes n approved new requests for domain (user
// <prefix>-user-<i>@example.org, project <prefix>-proj-<i>, default preset).
// done writes them as an earlier run left them: Status done, PIN replaced,
// IDs filled in.
func benchWriteSheet(b *testing.B, path string, n int, domain, prefix string, done bool) {
	b.Helper()
	c := signup.DefaultColumns()
	header := []string{c.Timestamp, c.Email, c.FirstName, c.LastName, c.Organization, c.Role, c.Phone,
		c.Sponsor, c.PIN, c.Comment, c.ExistingAccount, c.ProjectName, c.ProjectDescription,
		c.AdditionalUsers, c.ExistingProject, c.QuotaPreset, c.Domain, c.Approved,
		c.Status, c.ProcessedAt, c.UserID, c.ProjectID}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := csv.NewWriter(bw)
	_ = w.Write(header)
	for i := 1; i <= n; i++ {
		pin, status, processed, userID, projectID := fmt.Sprintf("%04d", i%10000), "", "", "", ""
		if done {
			pin, status, processed = signup.PINRegistered, signup.StatusDone, "2026-11-18T10:00:00Z"
			userID, projectID = fmt.Sprintf("%032x", i), fmt.Sprintf("%032x", 1<<40+i)
		}
		_ = w.Write([]string{
			fmt.Sprintf("11/16/2026 %02d:%02d:%02d", 9+i/3600%10, i/60%60, i%60),
			fmt.Sprintf("%s-user-%05d@example.org", prefix, i), "Bench", fmt.Sprintf("User %d", i),
			"Benchmark University", "Researcher", "+1 617 555 0100", "Prof. Sponsor", pin,
			"", "No", fmt.Sprintf("%s-proj-%05d", prefix, i), "Benchmark project " + strconv.Itoa(i),
			"", "No", "", domain, "TRUE", status, processed, userID, projectID,
		})
	}
	w.Flush()
	if err := errors.Join(w.Error(), bw.Flush(), f.Close()); err != nil {
		b.Fatal(err)
	}
}

// benchRunCLI runs scripts/bench-openstack-cli for rows rows through the
// proxy, in chunks of benchCLIChunk rows, each in a domain of its own.
//
// The script draws each user's password as base64 and passes it as
// `--password <value>`; a value starting with "-" (1 in 64) makes the CLI's
// argument parser refuse it ("argument --password: expected one argument")
// and the script exit half-way. Chunks keep such a failure cheap: the
// failed chunk is run again in a fresh domain, and only completed chunks
// count.
func benchRunCLI(b *testing.B, ks *testenv.KeystoneEnv, cc *testenv.CountingCloud, root string, rows int) benchCLI {
	out := benchCLI{rows: rows, counts: map[string]testenv.ServiceCount{}, cpu: benchCPU{}}
	for done := 0; done < rows; {
		n := min(benchCLIChunk, rows-done)
		var err error
		for attempt := 1; attempt <= benchCLIAttempts; attempt++ {
			var chunk benchCLI
			chunk, err = benchRunCLIChunk(b, ks, cc, root, n)
			if err == nil {
				out.seconds += chunk.seconds
				for svc, c := range chunk.counts {
					t := out.counts[svc]
					t.Reads, t.Writes, t.Auth = t.Reads+c.Reads, t.Writes+c.Writes, t.Auth+c.Auth
					t.BusyTime += c.BusyTime
					t.ServiceTime += c.ServiceTime
					out.counts[svc] = t
				}
				for k, v := range chunk.cpu {
					out.cpu[k] += v
				}
				break
			}
			if !strings.Contains(err.Error(), "expected one argument") {
				b.Fatal(err)
			}
			out.retries++
		}
		if err != nil {
			b.Fatalf("%d attempts: %v", benchCLIAttempts, err)
		}
		done += n
	}
	out.perRowMS = out.seconds * 1000 / float64(rows)
	return out
}

// benchRunCLIChunk runs the script once for rows rows in a new domain.
func benchRunCLIChunk(b *testing.B, ks *testenv.KeystoneEnv, cc *testenv.CountingCloud, root string, rows int) (benchCLI, error) {
	_, domain := ks.Domain(b) // exists already: the script's --or-show finds it
	cmd := exec.CommandContext(b.Context(), filepath.Join(root, "scripts", "bench-openstack-cli"), strconv.Itoa(rows), domain)
	cmd.Env = cc.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0 := benchReadCPU(root, syscall.RUSAGE_CHILDREN)
	cc.Reset()
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if i := strings.LastIndex(msg, "error:"); i >= 0 {
			msg = msg[i:]
		}
		return benchCLI{}, fmt.Errorf("scripts/bench-openstack-cli %d %s: %v: %s", rows, domain, err, strings.TrimSpace(msg))
	}
	out := benchCLI{rows: rows, counts: cc.Counts(), cpu: benchReadCPU(root, syscall.RUSAGE_CHILDREN).since(cpu0)}
	line := strings.TrimSpace(stdout.String())
	for f := range strings.FieldsSeq(line) {
		k, v, _ := strings.Cut(f, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch k {
		case "seconds":
			out.seconds = x
		case "per_row_ms":
			out.perRowMS = x
		}
	}
	if out.perRowMS <= 0 {
		return benchCLI{}, fmt.Errorf("scripts/bench-openstack-cli printed %q, want rows=N seconds=S per_row_ms=M", line)
	}
	return out, nil
}

// benchProcess runs the addusers binary with args against the proxy and
// returns its wall time, peak RSS and API requests.
func benchProcess(b *testing.B, cc *testenv.CountingCloud, bin, dir string, args ...string) benchProc {
	b.Helper()
	out, err := os.CreateTemp(dir, "addusers-out-*")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(b.Context(), bin, args...)
	cmd.Env = cc.Env()
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, &stderr // the 10,000-row report goes to a file
	cc.Reset()
	start := time.Now()
	err = cmd.Run()
	p := benchProc{args: strings.Join(args, " "), wall: time.Since(start), counts: cc.Counts()}
	if err != nil {
		b.Fatalf("addusers %s: %v\n%.2000s", p.args, err, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatalf("addusers %s: no rusage", p.args)
	}
	p.maxRSS = ru.Maxrss // KiB on Linux
	return p
}

// benchCPU is CPU time by process: the dev servers by service name (read
// from the pid files of scripts/dev-keystone and /proc), and "self".
type benchCPU map[string]time.Duration

// benchServerDirs are the dev servers' state directories under .dev/.
var benchServerDirs = map[string]string{"identity": "keystone", "compute": "nova", "block-storage": "cinder", "network": "neutron"}

// benchReadCPU reads the CPU time the dev servers have used so far, and
// this process's (RUSAGE_SELF) or its children's (RUSAGE_CHILDREN). A
// server whose pid file or /proc entry cannot be read is left out: the
// numbers are a diagnosis, not a measurement the benchmark depends on.
func benchReadCPU(root string, who int) benchCPU {
	cpu := benchCPU{}
	dev := os.Getenv("KAIZEN_DEV_DIR")
	if dev == "" {
		dev = filepath.Join(root, ".dev")
	}
	for svc, name := range benchServerDirs {
		pid, err := os.ReadFile(filepath.Join(dev, name, name+".pid"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(pid)), "stat"))
		if err != nil {
			continue
		}
		// Fields after "(comm)": state is field 3, utime 14, stime 15, in
		// clock ticks (USER_HZ, 100 on Linux).
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			cpu[svc] = time.Duration(ut+st) * (time.Second / 100)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err == nil {
		cpu["self"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return cpu
}

// since is the CPU used between start and c, for the processes in both.
func (c benchCPU) since(start benchCPU) benchCPU {
	d := benchCPU{}
	for k, v := range c {
		if s, ok := start[k]; ok {
			d[k] = v - s
		}
	}
	return d
}

// benchCPUCell shows one process's CPU time, "-" when unknown.
func (c benchCPU) cell(k string) string {
	v, ok := c[k]
	if !ok {
		return "-"
	}
	return benchDur(v)
}

// benchOtherTests lists the Go test binaries running besides this one
// (other packages of the same go test, or other people's runs).
func benchOtherTests() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if name := filepath.Base(string(argv0)); strings.HasSuffix(name, ".test") {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	return out
}

// benchRepoRoot is the module root (the benchmark runs in test/bench).
func benchRepoRoot(b *testing.B) string {
	b.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "bench-openstack-cli")); err != nil {
		b.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

// benchBuildAddusers builds cmd/addusers into a temporary directory.
func benchBuildAddusers(b *testing.B) string {
	b.Helper()
	bin, err := testenv.BuildProgram(b.Context(), b.TempDir(), "addusers", false)
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// benchClientCounter counts the requests of one HTTP client (setpass's
// Keystone client), classified as testenv.CountingCloud classifies them:
// the proxy counts per service, not per client.
type benchClientCounter struct {
	prefix  string // the User-Agent every request must start with
	wrapped http.RoundTripper

	mu sync.Mutex
	n  benchClientCount
}

// benchClientCount is what the client asked since the last reset.
type benchClientCount struct {
	reads, writes, auth int
	foreign             int // requests without the User-Agent prefix
	byPath              map[string]int
	elapsed             time.Duration // sum of the client's latencies
}

func (c *benchClientCounter) wrap(base http.RoundTripper) http.RoundTripper {
	c.wrapped = base
	c.reset()
	return benchRoundTripper{c}
}

func (c *benchClientCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = benchClientCount{byPath: map[string]int{}}
}

func (c *benchClientCounter) snapshot() benchClientCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	n.byPath = maps.Clone(c.n.byPath)
	return n
}

type benchRoundTripper struct{ c *benchClientCounter }

func (t benchRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.c.wrapped.RoundTrip(r)
	elapsed := time.Since(start) // to the response headers
	path := strings.TrimRight(r.URL.Path, "/")
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("User-Agent"), c.prefix) {
		c.n.foreign++
	}
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/auth/tokens"):
		c.n.auth++
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		c.n.reads++
	default:
		c.n.writes++
	}
	c.n.byPath[r.Method+" "+benchNormalisePath(r.URL.Path)]++
	c.n.elapsed += elapsed
	return resp, err
}

// benchNormalisePath replaces IDs by {id} as testenv.CountingCloud does:
// segments all digits, or at least 8 bytes long with a digit in them.
func benchNormalisePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		allDigits := s != "" && strings.Trim(s, "0123456789") == ""
		if allDigits || len(s) >= 8 && strings.ContainsAny(s, "0123456789") {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// table renders the iteration's results.
func (r benchImportResult) table() string {
	var buf bytes.Buffer
	k := r.kaizen
	n := float64(k.rows)
	fmt.Fprintf(&buf, "\nBenchmarkImport: %d new requests (new user + new project each, preset small,\n", k.rows)
	fmt.Fprintf(&buf, "role member, quota-sets on compute, block-storage and network), 8 workers, CSV sheet,\n")
	fmt.Fprintf(&buf, "real setpass and outbox, all OpenStack traffic through testenv.CountingCloud\n\n")

	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "1. first run\treads/row\twrites/row\tneeded\tauth\tbusy\tbusy/wall\tserver CPU\t")
	pct := func(d time.Duration) string { return fmt.Sprintf("%.0f%%", 100*d.Seconds()/k.wall.Seconds()) }
	for _, s := range benchServices {
		rd, w, a := k.own(s)
		c := k.counts[s]
		if s != "identity" {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%d\t%d\t%s\t%s\t%s\t\n", s, float64(rd)/n, float64(w)/n,
				benchNeededWrites[s], a, benchDur(c.BusyTime), pct(c.BusyTime), k.cpu.cell(s))
			continue
		}
		sp := k.setpass
		fmt.Fprintf(tw, "identity: addusers\t%.3f\t%.3f\t%d\t%d\t\t\t\t\n", float64(rd)/n, float64(w)/n, benchNeededWrites[s], a)
		fmt.Fprintf(tw, "setpass\t%.3f\t%.3f\t-\t%d\t\t\t\t\n", float64(sp.reads)/n, float64(sp.writes)/n, sp.auth)
		fmt.Fprintf(tw, "both\t%.3f\t%.3f\t\t%d\t%s\t%s\t%s\t\n", float64(c.Reads)/n, float64(c.Writes)/n, c.Auth,
			benchDur(c.BusyTime), pct(c.BusyTime), k.cpu.cell(s))
	}
	fmt.Fprintf(tw, "all services: addusers\t%.3f\t%.3f\t%d\t\t\t\t\t\n", float64(k.reads())/n, float64(k.writes())/n, 6)
	fmt.Fprintf(tw, "benchmark process (addusers, setpass, proxies)\t\t\t\t\t\t\t%s\t\n", k.cpu.cell("self"))
	tw.Flush()

	fmt.Fprintf(&buf, "\n   requests by path (addusers + setpass; per row):\n")
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, s := range benchServices {
		c := k.counts[s]
		for _, p := range slices.Sorted(maps.Keys(c.ByPath)) {
			who := ""
			if s == "identity" {
				if sp := k.setpass.byPath[p]; sp > 0 {
					who = fmt.Sprintf("setpass %d", sp)
				}
			}
			fmt.Fprintf(tw, "   %s\t%s\t%d\t%.3f\t%s\n", s, p, c.ByPath[p], float64(c.ByPath[p])/n, who)
		}
	}
	tw.Flush()
	if bad := benchBadStatuses(k.counts); bad != "" {
		fmt.Fprintf(&buf, "   non-2xx responses: %s\n", bad)
	}

	name, busy := k.busiest()
	fmt.Fprintf(&buf, "\n   wall %s for %d rows: %.1f rows/s, %.1f ms/row; %d mails queued (not delivered)\n",
		benchDur(k.wall), k.rows, n/k.wall.Seconds(), k.wall.Seconds()*1000/n, k.mail)
	fmt.Fprintf(&buf, "   busiest server: %s, busy %s (setpass's %d Keystone requests included; their client-side time %s)\n",
		name, benchDur(busy), k.setpass.reads+k.setpass.writes+k.setpass.auth, benchDur(k.setpass.elapsed))
	fmt.Fprintf(&buf, "   wall / busiest server's busy time = %.2f\n", k.floorRatio())
	fmt.Fprintf(&buf, "   (compute's busy time includes waiting for Keystone: Nova reads the project of each quota PUT\n")
	fmt.Fprintf(&buf, "   from Keystone, unseen by the proxy, which adds %d requests to Keystone's load here)\n", k.counts["compute"].Writes)
	var cpuSum time.Duration
	for _, v := range k.cpu {
		cpuSum += v
	}
	var cpuName string
	var cpuMost time.Duration
	for _, svc := range benchServices {
		if v := k.cpu[svc]; v > cpuMost {
			cpuName, cpuMost = svc, v
		}
	}
	if cpuMost > 0 {
		fmt.Fprintf(&buf, "   wall / busiest server's CPU time = %.2f (%s, %s)\n", k.wall.Seconds()/cpuMost.Seconds(), cpuName, benchDur(cpuMost))
	}
	fmt.Fprintf(&buf, "   CPU used by the servers and this process: %s of the %d CPUs' %s (%.0f%%)\n",
		benchDur(cpuSum), runtime.NumCPU(), benchDur(k.wall*time.Duration(runtime.NumCPU())),
		100*cpuSum.Seconds()/(k.wall.Seconds()*float64(runtime.NumCPU())))
	if len(k.others) > 0 {
		fmt.Fprintf(&buf, "   NOTE: other test binaries ran meanwhile, sharing the servers and CPUs: %s\n", strings.Join(k.others, ", "))
	}
	fmt.Fprintf(&buf, "   allocations (whole process: addusers, setpass, proxies): %.0f KB/row, %.0f allocs/row\n",
		float64(k.bytes)/n/1024, float64(k.mallocs)/n)

	c := r.cli
	fmt.Fprintf(&buf, "\n2. scripts/bench-openstack-cli, %d rows, same proxy: %.1f s, %.0f ms/row\n", c.rows, c.seconds, c.perRowMS)
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "   service\treads/row\twrites/row\tauth/row\tbusy\tserver CPU\t")
	for _, s := range benchServices {
		sc := c.counts[s]
		cn := float64(c.rows)
		fmt.Fprintf(tw, "   %s\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", s, float64(sc.Reads)/cn, float64(sc.Writes)/cn, float64(sc.Auth)/cn,
			benchDur(sc.BusyTime), c.cpu.cell(s))
	}
	fmt.Fprintf(tw, "   the script and its CLI processes\t\t\t\t\t%s\t\n", c.cpu.cell("self"))
	tw.Flush()
	fmt.Fprintf(&buf, "   (run as %d chunks, each in its own domain; requests include each chunk's domain lookup,\n", (c.rows+benchCLIChunk-1)/benchCLIChunk)
	fmt.Fprintf(&buf, "   which the script does not time; chunks run again after the script's --password bug: %d)\n", c.retries)
	fmt.Fprintf(&buf, "   Kaizen is %.1fx faster per row\n", r.cliSpeedup())

	rr := r.rerun
	fmt.Fprintf(&buf, "\n3. re-run on the %d processed rows: wall %s (%.2f%% of the first run)\n", rr.rows, benchDur(rr.wall), r.rerunPct())
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "   service\treads\twrites\tauth\t")
	for _, s := range benchServices {
		sc := rr.counts[s]
		fmt.Fprintf(tw, "   %s\t%d\t%d\t%d\t\n", s, sc.Reads, sc.Writes, sc.Auth)
	}
	tw.Flush()

	fmt.Fprintf(&buf, "\n4. peak RSS of the addusers binary, %d-row sheet (requests through the proxy)\n", r.bigRows)
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, p := range []struct {
		what string
		p    benchProc
	}{
		{"process alone (--version)", r.baseline},
		{"plan, all rows new: read + parse + plan every row", r.plan},
		{"import, all rows done: the re-run of a big sheet", r.doneImport},
	} {
		var reqs []string
		for _, s := range benchServices {
			if sc := p.p.counts[s]; sc.Requests() > 0 {
				reqs = append(reqs, fmt.Sprintf("%s %d", s, sc.Requests()))
			}
		}
		req := strings.Join(reqs, ", ")
		if req == "" {
			req = "none"
		}
		fmt.Fprintf(tw, "   %s\t%.1f MB\t%s\trequests: %s\n", p.what, p.p.peakMB(), benchDur(p.p.wall), req)
	}
	tw.Flush()
	fmt.Fprintf(&buf, "   (plan measures reading, parsing and planning 10,000 rows, not 10,000 creations,\n")
	fmt.Fprintf(&buf, "   which would take about 15 minutes on the single-threaded dev cloud)\n")

	fmt.Fprintf(&buf, "\ngoals\n")
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	writesOK := true
	for _, s := range benchServices {
		_, w, _ := k.own(s)
		if w != benchNeededWrites[s]*k.rows {
			writesOK = false
		}
	}
	rerunWrites := 0
	for _, s := range benchServices {
		rerunWrites += rr.counts[s].Writes
	}
	goal := func(ok bool, what, got string) {
		v := "MET"
		if !ok {
			v = "MISSED"
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s\n", v, what, got)
	}
	goal(writesOK, "1. only the writes a row needs (3 identity, 1 per quota service)",
		fmt.Sprintf("%.3f writes/row", float64(k.writes())/n))
	goal(float64(k.reads())/n <= benchGoalReadsPerRow, "1. at most 1 read per row (addusers, all services)",
		fmt.Sprintf("%.3f reads/row (setpass adds %.3f Keystone reads/row)", float64(k.reads())/n, float64(k.setpass.reads)/n))
	goal(k.floorRatio() <= benchGoalFloorRatio, "1. wall / busiest server's busy time <= 1.2", fmt.Sprintf("%.2f (%s)", k.floorRatio(), name))
	goal(r.cliSpeedup() >= benchGoalCLISpeedup, "2. at least 20x the openstack CLI per row", fmt.Sprintf("%.1fx", r.cliSpeedup()))
	goal(rerunWrites == 0, "3. re-run writes nothing", fmt.Sprintf("%d writes", rerunWrites))
	goal(r.rerunPct() < benchGoalRerunPct, "3. re-run under 5% of the first run", fmt.Sprintf("%.2f%% (%s vs %s)", r.rerunPct(), benchDur(rr.wall), benchDur(k.wall)))
	goal(r.plan.peakMB() < benchGoalPeakMB, "4. peak memory, 10,000 rows, under 150 MB (plan)", fmt.Sprintf("%.1f MB", r.plan.peakMB()))
	goal(r.doneImport.peakMB() < benchGoalPeakMB, "4. peak memory, 10,000 done rows, under 150 MB (import)", fmt.Sprintf("%.1f MB", r.doneImport.peakMB()))
	tw.Flush()
	buf.WriteString("\n")
	return buf.String()
}

func benchBadStatuses(counts map[string]testenv.ServiceCount) string {
	var out []string
	for _, s := range benchServices {
		for code, n := range counts[s].ByStatus {
			if code < 200 || code > 299 {
				out = append(out, fmt.Sprintf("%s HTTP %d x%d", s, code, n))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func benchDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}
